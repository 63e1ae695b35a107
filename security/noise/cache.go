package noise

import (
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
)

// staticCache remembers static-static Diffie-Hellman results by the peer's
// static key, so that a rekey or a reconnection to a known peer costs one
// X25519 less on each side (WireGuard precomputes it too). It is a bounded
// LRU, and a result is wiped when it leaves (evicted, replaced or purged).
type staticCache struct {
	mu sync.Mutex // also covers the eviction callback, which runs inside the cache's calls
	c  *lru.Cache[[32]byte, *[32]byte]
}

func newStaticCache(size int) *staticCache {
	if size <= 0 {
		return nil
	}
	c, err := lru.NewWithEvict[[32]byte, *[32]byte](size, func(_ [32]byte, v *[32]byte) { clear(v[:]) })
	if err != nil {
		return nil
	}
	return &staticCache{c: c}
}

func (c *staticCache) get(pub []byte) ([32]byte, bool) {
	var k [32]byte
	copy(k[:], pub)
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.c.Get(k)
	if !ok {
		return [32]byte{}, false
	}
	return *v, true
}

func (c *staticCache) put(pub []byte, v [32]byte) {
	var k [32]byte
	copy(k[:], pub)
	p := new([32]byte)
	*p = v
	c.mu.Lock()
	defer c.mu.Unlock()
	c.c.Remove(k) // wipes the result it replaces
	c.c.Add(k, p)
}

func (c *staticCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.c.Len()
}

// purge drops and wipes every entry (the transport closes).
func (c *staticCache) purge() {
	if c != nil {
		c.mu.Lock()
		c.c.Purge()
		c.mu.Unlock()
	}
}
