package netsim

import (
	"net/netip"
	"time"
)

type evKind uint8

const (
	// evRealm: a packet reaches the router of a realm (the internet or a
	// NAT's inside) after the sender's up link or a NAT's WAN up link.
	evRealm evKind = iota
	// evNAT: a packet reaches a NAT's WAN side after the WAN down link.
	evNAT
	// evHost: a packet reaches a host after its down link.
	evHost
	// evTimer: a virtual Clock().AfterFunc timer fires.
	evTimer
)

// event is one entry of the network's timer heap. A packet is a single
// event that is pushed again at each hop of its path, so a packet costs one
// allocation (plus its payload) however long its path.
type event struct {
	at   time.Duration // network time of the event
	seq  uint64        // tie-break: events at the same time run in the order scheduled
	idx  int           // position in the heap, -1 when not queued
	kind evKind
	gen  uint32 // generation of host or nat when scheduled; a mismatch means it moved

	src, dst netip.AddrPort
	data     []byte
	realm    *realm
	host     *Host
	nat      *NAT
	timer    *vtimer
}

// eventHeap is a binary min-heap on (at, seq) that keeps each event's index,
// so a timer can be removed when it is stopped.
type eventHeap []*event

func (h eventHeap) less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}

func (h eventHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}

func (h *eventHeap) push(e *event) {
	e.idx = len(*h)
	*h = append(*h, e)
	h.up(e.idx)
}

func (h *eventHeap) pop() *event {
	old := *h
	e := old[0]
	last := len(old) - 1
	old.swap(0, last)
	old[last] = nil
	*h = old[:last]
	if last > 0 {
		h.down(0)
	}
	e.idx = -1
	return e
}

func (h *eventHeap) remove(e *event) {
	i := e.idx
	old := *h
	last := len(old) - 1
	if i != last {
		old.swap(i, last)
	}
	old[last] = nil
	*h = old[:last]
	if i != last {
		if !h.down(i) {
			h.up(i)
		}
	}
	e.idx = -1
}

func (h eventHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

// down sifts i down and reports whether it moved.
func (h eventHeap) down(i0 int) bool {
	i := i0
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && h.less(r, l) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
