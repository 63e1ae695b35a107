package community

import (
	"sync"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/ipv8/go-ipv8/discovery/community/internal/fastverify"
	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/peer"
)

// KeyCache keeps the parsed public keys of recent senders, so that a
// packet's 74-byte key is decompressed once, not per packet; and for the
// keys that send most it keeps fixed-base tables (see internal/fastverify)
// that make a signature check about 3.5 times faster than crypto/ed25519's.
// A key earns a table after HotAfter verifications; at most Tables keys
// hold one (284 KiB each), replaced in CLOCK order. It is safe for
// concurrent use and may be shared by many endpoints (a simulation of
// thousands of hosts shares one).
type KeyCache struct {
	c        *lru.Cache[[wire.KeySize]byte, *keyEntry]
	hotAfter uint32

	mu     sync.Mutex
	tables []*keyEntry // CLOCK ring of the keys holding a table
	hand   int
}

// KeyCacheConfig sizes a KeyCache; zero values take the defaults.
type KeyCacheConfig struct {
	Size     int // keys kept (4096)
	Tables   int // keys with a verification table (16); negative for none
	HotAfter int // verifications before a key gets a table (32)
}

type keyEntry struct {
	pub     *peer.PublicKey
	fv      *fastverify.Key
	uses    atomic.Uint32
	touched atomic.Bool // CLOCK reference bit
}

// NewKeyCache returns a cache of at most size keys, with the default table
// settings.
func NewKeyCache(size int) *KeyCache { return NewKeyCacheWith(KeyCacheConfig{Size: size}) }

// NewKeyCacheWith returns a cache configured by cfg.
func NewKeyCacheWith(cfg KeyCacheConfig) *KeyCache {
	if cfg.Size < 1 {
		cfg.Size = 4096
	}
	if cfg.Tables == 0 {
		cfg.Tables = 16
	}
	if cfg.HotAfter <= 0 {
		cfg.HotAfter = 32
	}
	c, _ := lru.New[[wire.KeySize]byte, *keyEntry](cfg.Size)
	k := &KeyCache{c: c, hotAfter: uint32(cfg.HotAfter)}
	if cfg.Tables > 0 {
		k.tables = make([]*keyEntry, 0, cfg.Tables)
	}
	return k
}

var sharedKeys = NewKeyCache(4096)

func (k *KeyCache) entry(bin []byte) (*keyEntry, error) {
	if len(bin) != wire.KeySize {
		return nil, wire.ErrUnsupportedKey
	}
	a := [wire.KeySize]byte(bin)
	if e, ok := k.c.Get(a); ok {
		return e, nil
	}
	pub, err := peer.ParseLibNaCLPK(bin)
	if err != nil {
		return nil, err
	}
	fv, err := fastverify.NewKey(pub.Ed25519())
	if err != nil {
		return nil, err
	}
	e := &keyEntry{pub: pub, fv: fv}
	k.c.Add(a, e)
	return e, nil
}

// Parse returns the key of a LibNaCLPK encoding.
func (k *KeyCache) Parse(bin []byte) (*peer.PublicKey, error) {
	e, err := k.entry(bin)
	if err != nil {
		return nil, err
	}
	return e.pub, nil
}

// Verify checks the signature of a parsed signed message and returns the
// sender's key. The error wraps wire.ErrBadSignature or wire.ErrMalformed.
func (k *KeyCache) Verify(s *wire.Signed) (*peer.PublicKey, error) {
	e, err := k.entry(s.KeyBin)
	if err != nil {
		return nil, err
	}
	if cap(k.tables) > 0 {
		e.touched.Store(true)
		if e.uses.Add(1) == k.hotAfter && !e.fv.Precomputed() {
			k.admit(e)
		}
	}
	if !e.fv.Verify(s.SignedBytes(), s.Signature) {
		return nil, wire.ErrBadSignature
	}
	return e.pub, nil
}

// admit gives e a table, taking it from the first key in CLOCK order that
// was not used since the hand last passed.
func (k *KeyCache) admit(e *keyEntry) {
	k.mu.Lock()
	if len(k.tables) < cap(k.tables) {
		k.tables = append(k.tables, e)
		k.mu.Unlock()
		e.fv.Precompute()
		return
	}
	for {
		v := k.tables[k.hand]
		if v.touched.Swap(false) {
			k.hand = (k.hand + 1) % len(k.tables)
			continue
		}
		k.tables[k.hand] = e
		k.hand = (k.hand + 1) % len(k.tables)
		k.mu.Unlock()
		v.fv.Drop()
		v.uses.Store(0) // it must earn a table again
		e.fv.Precompute()
		return
	}
}
