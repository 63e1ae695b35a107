package netsim

import (
	"time"

	"github.com/ipv8/go-ipv8/internal/clock"
)

// virtualClock is a virtual network's clock.Clock: time stands still
// except inside RunFor/RunUntil, which run its timers in order with the
// network's packets.
type virtualClock struct{ n *Network }

var _ clock.Clock = virtualClock{}

func (c virtualClock) Now() time.Time {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	return VirtualEpoch.Add(c.n.vnow)
}

// AfterFunc schedules f at d from now; f runs on the goroutine calling
// RunFor/RunUntil, in time order with packet deliveries (a timer and a
// packet due at the same instant run in the order they were scheduled).
func (c virtualClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	t := &vtimer{n: c.n, fn: f}
	t.ev = event{kind: evTimer, idx: -1, timer: t}
	c.n.mu.Lock()
	if !c.n.closed {
		c.n.schedule(&t.ev, c.n.vnow+max(d, 0))
	}
	c.n.mu.Unlock()
	return t
}

// vtimer is a virtual timer; its heap entry is embedded, so Stop removes it
// from the heap at once instead of leaving it to fire as a no-op.
type vtimer struct {
	n  *Network
	fn func()
	ev event
}

func (t *vtimer) Stop() bool {
	t.n.mu.Lock()
	defer t.n.mu.Unlock()
	if t.ev.idx < 0 {
		return false
	}
	t.n.heap.remove(&t.ev)
	return true
}

func (t *vtimer) Reset(d time.Duration) bool {
	t.n.mu.Lock()
	defer t.n.mu.Unlock()
	pending := t.ev.idx >= 0
	if pending {
		t.n.heap.remove(&t.ev)
	}
	if !t.n.closed {
		t.n.schedule(&t.ev, t.n.vnow+max(d, 0))
	}
	return pending
}
