package noise

import (
	lru "github.com/hashicorp/golang-lru/v2"
)

// staticCache remembers static-static Diffie-Hellman results by the peer's
// static key, so that a rekey or a reconnection to a known peer costs one
// X25519 less on each side.
type staticCache struct {
	c *lru.Cache[[32]byte, [32]byte]
}

func newStaticCache(size int) *staticCache {
	if size <= 0 {
		return nil
	}
	c, err := lru.New[[32]byte, [32]byte](size)
	if err != nil {
		return nil
	}
	return &staticCache{c: c}
}

func (c *staticCache) get(pub []byte) ([32]byte, bool) {
	var k [32]byte
	copy(k[:], pub)
	return c.c.Get(k)
}

func (c *staticCache) put(pub []byte, v [32]byte) {
	var k [32]byte
	copy(k[:], pub)
	c.c.Add(k, v)
}

// purge drops every entry (the transport closes).
func (c *staticCache) purge() {
	if c != nil {
		c.c.Purge()
	}
}
