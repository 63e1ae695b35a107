package noise

import "testing"

// The static-static cache is bounded, and what leaves it is wiped.
func TestStaticCacheIsBoundedAndWipesEvicted(t *testing.T) {
	c := newStaticCache(2)
	keys := [][]byte{make([]byte, 32), make([]byte, 32), make([]byte, 32)}
	for i := range keys {
		keys[i][0] = byte(i + 1)
	}
	c.put(keys[0], [32]byte{1})
	first, _ := c.c.Peek([32]byte(keys[0]))
	c.put(keys[1], [32]byte{2})
	c.put(keys[2], [32]byte{3}) // evicts keys[0]
	if c.len() != 2 {
		t.Fatalf("%d entries in a cache of 2", c.len())
	}
	if _, ok := c.get(keys[0]); ok {
		t.Fatal("the oldest entry was not evicted")
	}
	if *first != ([32]byte{}) {
		t.Fatal("an evicted result was not wiped")
	}
	second, _ := c.c.Peek([32]byte(keys[1]))
	c.put(keys[1], [32]byte{9})
	if *second != ([32]byte{}) {
		t.Fatal("a replaced result was not wiped")
	}
	if v, ok := c.get(keys[1]); !ok || v != ([32]byte{9}) {
		t.Fatal("replacement not stored")
	}
	last, _ := c.c.Peek([32]byte(keys[2]))
	c.purge()
	if *last != ([32]byte{}) || c.len() != 0 {
		t.Fatal("purge did not wipe")
	}
}
