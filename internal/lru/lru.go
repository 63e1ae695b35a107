// Package lru is a bounded least-recently-used cache that costs little per
// entry: the entries live in one slice, linked by 32-bit indexes, and a map
// from key to index finds them. It exists because go-ipv8 keeps several
// per-peer caches (peerstore records, handshake replay timestamps, session
// tickets, precomputed Diffie-Hellman results) sized for ten thousand
// peers and more, and a general-purpose LRU spends two to three times the
// memory per entry on pointers, list bookkeeping and expiry fields that
// these caches do not use.
//
// A Cache is safe for concurrent use. Slots of removed entries are zeroed,
// so a cache of secrets keeps no copy of one it dropped.
package lru

import (
	"errors"
	"sync"
)

// none marks the end of a list.
const none = -1

type node[K comparable, V any] struct {
	key        K
	val        V
	prev, next int32 // towards the most / least recently used; free slots chain by next
}

// Cache is a bounded LRU cache.
type Cache[K comparable, V any] struct {
	mu      sync.Mutex
	size    int
	index   map[K]int32
	nodes   []node[K, V]
	head    int32 // most recently used, or none
	tail    int32 // least recently used, or none
	free    int32 // first free slot, or none
	onEvict func(K, V)
}

// ErrSize is returned for a size that is not positive or too large.
var ErrSize = errors.New("lru: size must be between 1 and 2^31-1")

// New returns a cache holding at most size entries.
func New[K comparable, V any](size int) (*Cache[K, V], error) {
	return NewWithEvict[K, V](size, nil)
}

// NewWithEvict returns a cache holding at most size entries that calls
// onEvict (when not nil) for every entry that leaves it: pushed out by a
// newer one, removed, or purged. onEvict runs with the cache's lock held;
// it must not call the cache.
func NewWithEvict[K comparable, V any](size int, onEvict func(K, V)) (*Cache[K, V], error) {
	if size <= 0 || size > 1<<31-1 {
		return nil, ErrSize
	}
	return &Cache[K, V]{size: size, index: make(map[K]int32), head: none, tail: none, free: none, onEvict: onEvict}, nil
}

// Add sets key's value and makes it the most recently used. It reports
// whether an older entry was evicted to make room.
func (c *Cache[K, V]) Add(key K, val V) (evicted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.index[key]; ok {
		c.nodes[i].val = val
		c.moveToFront(i)
		return false
	}
	if len(c.index) >= c.size {
		c.removeAt(c.tail)
		evicted = true
	}
	var i int32
	if c.free != none {
		i = c.free
		c.free = c.nodes[i].next
	} else {
		c.nodes = append(c.nodes, node[K, V]{})
		i = int32(len(c.nodes) - 1)
	}
	n := &c.nodes[i]
	n.key, n.val, n.prev, n.next = key, val, none, c.head
	if c.head != none {
		c.nodes[c.head].prev = i
	}
	c.head = i
	if c.tail == none {
		c.tail = i
	}
	c.index[key] = i
	return evicted
}

// Get returns key's value and makes it the most recently used.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.index[key]
	if !ok {
		var zero V
		return zero, false
	}
	c.moveToFront(i)
	return c.nodes[i].val, true
}

// Peek returns key's value without changing how recently it was used.
func (c *Cache[K, V]) Peek(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.index[key]
	if !ok {
		var zero V
		return zero, false
	}
	return c.nodes[i].val, true
}

// Contains reports whether key is cached, without changing its recency.
func (c *Cache[K, V]) Contains(key K) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.index[key]
	return ok
}

// Remove drops key; it reports whether it was there.
func (c *Cache[K, V]) Remove(key K) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.index[key]
	if ok {
		c.removeAt(i)
	}
	return ok
}

// Len is the number of entries.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.index)
}

// Keys returns the keys from the least to the most recently used.
func (c *Cache[K, V]) Keys() []K {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]K, 0, len(c.index))
	for i := c.tail; i != none; i = c.nodes[i].prev {
		out = append(out, c.nodes[i].key)
	}
	return out
}

// Purge drops every entry (calling onEvict for each) and releases the
// cache's memory.
func (c *Cache[K, V]) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.onEvict != nil {
		for i := c.tail; i != none; i = c.nodes[i].prev {
			c.onEvict(c.nodes[i].key, c.nodes[i].val)
		}
	}
	clear(c.nodes)
	c.nodes = nil
	c.index = make(map[K]int32)
	c.head, c.tail, c.free = none, none, none
}

// removeAt unlinks slot i, tells onEvict, zeroes the slot and frees it.
func (c *Cache[K, V]) removeAt(i int32) {
	n := &c.nodes[i]
	c.unlink(i)
	delete(c.index, n.key)
	if c.onEvict != nil {
		c.onEvict(n.key, n.val)
	}
	*n = node[K, V]{prev: none, next: c.free}
	c.free = i
}

func (c *Cache[K, V]) unlink(i int32) {
	n := &c.nodes[i]
	if n.prev != none {
		c.nodes[n.prev].next = n.next
	} else {
		c.head = n.next
	}
	if n.next != none {
		c.nodes[n.next].prev = n.prev
	} else {
		c.tail = n.prev
	}
}

func (c *Cache[K, V]) moveToFront(i int32) {
	if c.head == i {
		return
	}
	c.unlink(i)
	n := &c.nodes[i]
	n.prev, n.next = none, c.head
	c.nodes[c.head].prev = i // head is not none: i was in the list and is not it
	c.head = i
	if c.tail == none {
		c.tail = i
	}
}
