package community

import (
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/peer"
)

// KeyCache keeps the parsed public keys of recent senders: every signed
// packet carries its sender's 74-byte key, and parsing one (a curve point
// decompression) costs as much as a quarter of a signature check. It is safe
// for concurrent use and may be shared by many endpoints (a simulation of
// thousands of hosts shares one).
type KeyCache struct {
	c *lru.Cache[[wire.KeySize]byte, *peer.PublicKey]
}

// NewKeyCache returns a cache of at most size keys.
func NewKeyCache(size int) *KeyCache {
	if size < 1 {
		size = 1
	}
	c, _ := lru.New[[wire.KeySize]byte, *peer.PublicKey](size)
	return &KeyCache{c: c}
}

var sharedKeys = NewKeyCache(4096)

// Parse returns the key of a LibNaCLPK encoding.
func (k *KeyCache) Parse(bin []byte) (*peer.PublicKey, error) {
	if len(bin) != wire.KeySize {
		return nil, wire.ErrUnsupportedKey
	}
	a := [wire.KeySize]byte(bin)
	if pub, ok := k.c.Get(a); ok {
		return pub, nil
	}
	pub, err := peer.ParseLibNaCLPK(bin)
	if err != nil {
		return nil, err
	}
	k.c.Add(a, pub)
	return pub, nil
}
