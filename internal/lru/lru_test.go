package lru

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
)

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	var evicted []string
	c, err := NewWithEvict[string, int](3, func(k string, v int) { evicted = append(evicted, fmt.Sprint(k, v)) })
	if err != nil {
		t.Fatal(err)
	}
	c.Add("a", 1)
	c.Add("b", 2)
	c.Add("c", 3)
	if _, ok := c.Get("a"); !ok { // a is now the most recent: b is next out
		t.Fatal("a missing")
	}
	if ev := c.Add("d", 4); !ev {
		t.Fatal("adding past the size evicted nothing")
	}
	if c.Contains("b") || !c.Contains("a") || !c.Contains("c") || !c.Contains("d") {
		t.Fatalf("after evicting: keys %v, want b gone", c.Keys())
	}
	if !slices.Equal(evicted, []string{"b2"}) {
		t.Fatalf("evicted %v, want [b2]", evicted)
	}
	if got := c.Keys(); !slices.Equal(got, []string{"c", "a", "d"}) {
		t.Fatalf("keys %v, want oldest first [c a d]", got)
	}
}

func TestPeekLeavesRecency(t *testing.T) {
	c, _ := New[int, int](2)
	c.Add(1, 10)
	c.Add(2, 20)
	if v, ok := c.Peek(1); !ok || v != 10 {
		t.Fatalf("Peek(1) = %d, %v", v, ok)
	}
	c.Add(3, 30) // 1 is still the oldest
	if c.Contains(1) {
		t.Fatal("Peek made 1 recent")
	}
}

func TestAddExistingUpdatesWithoutEvicting(t *testing.T) {
	n := 0
	c, _ := NewWithEvict[int, int](2, func(int, int) { n++ })
	c.Add(1, 10)
	c.Add(2, 20)
	if c.Add(1, 11) {
		t.Fatal("updating a key reported an eviction")
	}
	if v, _ := c.Peek(1); v != 11 || n != 0 || c.Len() != 2 {
		t.Fatalf("value %d, evictions %d, len %d", v, n, c.Len())
	}
	c.Add(3, 30) // 2 is the oldest now
	if c.Contains(2) || !c.Contains(1) {
		t.Fatalf("keys %v, want 2 evicted", c.Keys())
	}
}

func TestRemoveAndPurgeTellOnEvictAndReuseSlots(t *testing.T) {
	var got []int
	c, _ := NewWithEvict[int, int](4, func(k, _ int) { got = append(got, k) })
	for i := range 4 {
		c.Add(i, i)
	}
	if !c.Remove(2) || c.Remove(2) {
		t.Fatal("Remove reported wrongly")
	}
	c.Add(9, 9) // takes 2's slot: no growth, no eviction
	if len(c.nodes) != 4 {
		t.Fatalf("%d slots for 4 entries", len(c.nodes))
	}
	c.Purge()
	slices.Sort(got)
	if !slices.Equal(got, []int{0, 1, 2, 3, 9}) {
		t.Fatalf("onEvict saw %v", got)
	}
	if c.Len() != 0 || len(c.Keys()) != 0 {
		t.Fatal("entries left after Purge")
	}
	c.Add(5, 5) // usable after Purge
	if v, ok := c.Get(5); !ok || v != 5 {
		t.Fatal("cache unusable after Purge")
	}
}

func TestRemovedSlotIsZeroed(t *testing.T) {
	c, _ := New[int, [32]byte](2)
	secret := [32]byte{1, 2, 3}
	c.Add(1, secret)
	i := c.index[1]
	c.Remove(1)
	if c.nodes[i].val != ([32]byte{}) {
		t.Fatal("a removed value stays in its slot")
	}
	c.Add(2, secret)
	c.Add(3, secret)
	c.Add(4, secret) // evicts 2
	for _, n := range c.nodes {
		if n.key == 2 || (n.key == 0 && n.val != ([32]byte{})) {
			t.Fatal("an evicted value stays in its slot")
		}
	}
}

func TestBadSizeRefused(t *testing.T) {
	for _, n := range []int{0, -1} {
		if _, err := New[int, int](n); err == nil {
			t.Fatalf("size %d accepted", n)
		}
	}
}

// TestRandomOpsMatchModel checks the cache against a plain model under a
// long sequence of mixed operations.
func TestRandomOpsMatchModel(t *testing.T) {
	const size = 16
	c, _ := New[int, int](size)
	var model []int // keys, oldest first
	vals := map[int]int{}
	touch := func(k int) {
		model = slices.DeleteFunc(model, func(x int) bool { return x == k })
		model = append(model, k)
	}
	seed := uint32(1)
	rnd := func(n int) int { seed = seed*1664525 + 1013904223; return int(seed>>8) % n }
	for step := range 20000 {
		k := rnd(40)
		switch rnd(4) {
		case 0, 1:
			c.Add(k, step)
			vals[k] = step
			touch(k)
			if len(model) > size {
				delete(vals, model[0])
				model = model[1:]
			}
		case 2:
			v, ok := c.Get(k)
			want, has := vals[k]
			if ok != has || (ok && v != want) {
				t.Fatalf("step %d: Get(%d) = %d, %v; want %d, %v", step, k, v, ok, want, has)
			}
			if ok {
				touch(k)
			}
		case 3:
			ok := c.Remove(k)
			_, has := vals[k]
			if ok != has {
				t.Fatalf("step %d: Remove(%d) = %v", step, k, ok)
			}
			delete(vals, k)
			model = slices.DeleteFunc(model, func(x int) bool { return x == k })
		}
		if got := c.Keys(); !slices.Equal(got, model) {
			t.Fatalf("step %d: keys %v, want %v", step, got, model)
		}
	}
}

// TestSmallPerEntry: a full cache of 10 000 string keys (the size of a
// peer.ID) to pointers costs well under what golang-lru's entry alone does
// (about 135 bytes with its map slot).
func TestSmallPerEntry(t *testing.T) {
	const n = 10_000
	keys := make([]string, n)
	vals := make([]*int, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("peer-%032d", i)
		vals[i] = new(int)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, _ := New[string, *int](n)
	for i := range keys {
		c.Add(keys[i], vals[i])
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes per entry", per)
	if per > 96 {
		t.Fatalf("%.0f bytes per entry, want at most 96", per)
	}
	runtime.KeepAlive(c)
}

func BenchmarkAddGet(b *testing.B) {
	c, _ := New[int, int](1024)
	for i := 0; b.Loop(); i++ {
		c.Add(i&2047, i)
		c.Get((i + 7) & 2047)
	}
}
