package noise

import (
	"container/heap"
	"sync"
	"time"

	"github.com/ipv8/go-ipv8/internal/clock"
)

// timerHeap runs every deadline of a Transport (handshake retransmissions,
// expiries, rekeys, key wipes) from one min-heap and one clock timer, so
// that a session costs a heap slot, not a runtime timer or a goroutine.
// Callbacks run on the clock's goroutine, one due batch at a time, without
// the heap's lock held: they may schedule and cancel.
type timerHeap struct {
	clock clock.Clock

	mu      sync.Mutex
	items   timerItems
	timer   clock.Timer
	armedAt time.Time // deadline the clock timer is set for (zero: not armed)
	closed  bool
}

// timerItem is one scheduled callback; an owner keeps one and reschedules it.
type timerItem struct {
	when  time.Time
	fn    func()
	index int // position in the heap, -1 when not scheduled
}

func newTimerItem(fn func()) *timerItem { return &timerItem{fn: fn, index: -1} }

func newTimerHeap(c clock.Clock) *timerHeap { return &timerHeap{clock: c} }

// schedule sets it to run at when (replacing an earlier schedule).
func (h *timerHeap) schedule(it *timerItem, when time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	it.when = when
	if it.index >= 0 {
		heap.Fix(&h.items, it.index)
	} else {
		heap.Push(&h.items, it)
	}
	h.armLocked()
}

// cancel unschedules it.
func (h *timerHeap) cancel(it *timerItem) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(it)
}

func (h *timerHeap) removeLocked(it *timerItem) {
	i := it.index
	if i < 0 || i >= len(h.items) || h.items[i] != it {
		return
	}
	heap.Remove(&h.items, i)
}

// len reports how many callbacks are scheduled.
func (h *timerHeap) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.items)
}

func (h *timerHeap) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, it := range h.items {
		it.index = -1
	}
	h.items = nil
	if h.timer != nil {
		h.timer.Stop()
	}
}

// armLocked makes sure the clock timer fires by the earliest deadline.
func (h *timerHeap) armLocked() {
	if len(h.items) == 0 {
		return
	}
	first := h.items[0].when
	if !h.armedAt.IsZero() && !first.Before(h.armedAt) {
		return
	}
	h.armedAt = first
	d := first.Sub(h.clock.Now())
	if d < 0 {
		d = 0
	}
	if h.timer == nil {
		h.timer = h.clock.AfterFunc(d, h.fire)
	} else {
		h.timer.Reset(d)
	}
}

// fire runs every callback that is due, then re-arms for the next.
func (h *timerHeap) fire() {
	for {
		h.mu.Lock()
		h.armedAt = time.Time{}
		if h.closed || len(h.items) == 0 {
			h.mu.Unlock()
			return
		}
		now := h.clock.Now()
		it := h.items[0]
		if it.when.After(now) {
			h.armLocked()
			h.mu.Unlock()
			return
		}
		h.removeLocked(it)
		h.mu.Unlock()
		it.fn()
	}
}

// timerItems is the heap's order (container/heap), keeping each item's
// index so that it can be rescheduled or removed in place.
type timerItems []*timerItem

func (q timerItems) Len() int           { return len(q) }
func (q timerItems) Less(i, j int) bool { return q[i].when.Before(q[j].when) }

func (q timerItems) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index = i
	q[j].index = j
}

func (q *timerItems) Push(x any) {
	it := x.(*timerItem)
	it.index = len(*q)
	*q = append(*q, it)
}

func (q *timerItems) Pop() any {
	old := *q
	last := len(old) - 1
	it := old[last]
	old[last] = nil
	*q = old[:last]
	it.index = -1
	return it
}

// Every deadline of a session, in one place. A session has one timer item,
// scheduled for the earliest of:
//
//   - its outstanding PathChallenge's retransmission (backoff from
//     RetransmitInitial to RetransmitMax) or, at HandshakeTimeout, giving
//     up (a roam that was not validated reverts to the last validated path);
//   - the wipe of the previous keys, KeepPreviousKeys after a rotation;
//   - the unconfirmed next keys' expiry (HandshakeTimeout);
//   - the current keys' rekey time: RekeyAfterTime for keys we initiated,
//     RekeyAfterTime + HandshakeTimeout for keys we answered (so that the
//     two sides do not both start one); the next Send starts the rekey;
//   - the current keys' wipe at RejectAfterTime (the next Send then rekeys
//     and queues).
//
// Handshakes have their own items (retransmission and deadline), and so
// do inbound handshakes (expiry).

// rekeyAfter is when kp is due for a rekey.
func (s *session) rekeyAfter(kp *keypair) time.Time {
	d := s.t.cfg.RekeyAfterTime
	if !kp.initiator {
		d += s.t.cfg.HandshakeTimeout
	}
	return kp.created.Add(d)
}

// rescheduleLocked arms the session's timer for its earliest deadline.
func (s *session) rescheduleLocked(now time.Time) {
	if s.closed {
		return
	}
	var next time.Time
	consider := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if s.chal != nil {
		consider(s.chal.next)
	}
	if s.prev != nil {
		consider(s.t.timeOf(s.prevSince).Add(s.t.cfg.KeepPreviousKeys))
	}
	if s.next != nil {
		consider(s.next.created.Add(s.t.cfg.HandshakeTimeout))
	}
	if cur := s.cur.Load(); cur != nil && !cur.isWiped() {
		if !cur.rekeyDue.Load() {
			consider(s.rekeyAfter(cur))
		}
		consider(cur.created.Add(s.t.cfg.RejectAfterTime))
	}
	if next.IsZero() {
		s.t.timers.cancel(&s.timer)
		return
	}
	s.t.timers.schedule(&s.timer, next)
}

// onTimer runs whatever deadlines of the session have passed.
func (s *session) onTimer() {
	t := s.t
	now := t.now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	send := func() {}
	var drop []*keypair
	var pending [][]byte
	if c := s.chal; c != nil && !now.Before(c.next) {
		if !now.Before(c.deadline) {
			if c.ps != nil && s.path.Load() == c.ps && s.oldPath != nil {
				// The new address never answered: go back to the last one that did.
				s.path.Store(s.oldPath)
				s.oldPath = nil
				pending = s.takePendingLocked()
			}
			s.chal = nil
		} else {
			send = s.challengeSender(*c)
			if c.deferred {
				c.deferred = false // its first send (deferChallengeLocked)
			} else {
				t.stats.retransmissions.Add(1)
				c.rto *= 2
				if c.rto > t.cfg.RetransmitMax {
					c.rto = t.cfg.RetransmitMax
				}
			}
			c.next = now.Add(c.rto)
			if c.next.After(c.deadline) {
				c.next = c.deadline
			}
		}
	}
	if s.prev != nil && !now.Before(t.timeOf(s.prevSince).Add(t.cfg.KeepPreviousKeys)) {
		drop = append(drop, s.prev)
		s.prev = nil
	}
	if s.next != nil && !now.Before(s.next.created.Add(t.cfg.HandshakeTimeout)) {
		drop = append(drop, s.next)
		s.next = nil
	}
	if cur := s.cur.Load(); cur != nil && !cur.isWiped() {
		if !now.Before(cur.created.Add(t.cfg.RejectAfterTime)) {
			cur.wipe() // stays current: the next Send finds it wiped, rekeys and queues
			t.indexes.removeIf(cur.localIndex, cur)
		} else if !now.Before(s.rekeyAfter(cur)) {
			cur.rekeyDue.Store(true)
		}
	}
	s.rescheduleLocked(now)
	s.mu.Unlock()
	for _, kp := range drop {
		t.dropKeypair(kp)
	}
	send()
	s.flush(pending)
}
