package noise

import "sync"

// The replay window is a ring of 64-bit words (RFC 6479's layout): a bit per
// counter value, covering ReplayWindow counters below the highest seen.
// Moving the window forward clears whole words, so the cost of a packet
// does not depend on how far the counter jumped.
const (
	replayWordBits = 64
	// replayWords is the ring's length: 33 words give the 2048-packet
	// window specified in 264 bytes per receiving key. One word fewer than
	// before keeps a keypair (which holds the window) in the allocator's
	// 416-byte size class instead of the 448 one, for every session. A
	// power of two would make the ring index a mask instead of a (constant,
	// compiled to a multiplication) modulo, at twice the memory.
	replayWords = 33
	// ReplayWindow is how far behind the highest counter received a packet
	// may arrive and still be accepted once. One word of the ring is the
	// one being filled, so the guaranteed window is one word short of the
	// ring.
	ReplayWindow = (replayWords - 1) * replayWordBits // 2048
)

// replayWindow drops duplicated and replayed packets of one receiving key.
type replayWindow struct {
	mu      sync.Mutex
	highest uint64 // highest counter accepted
	any     bool   // a counter was accepted
	ring    [replayWords]uint64
}

// check reports whether counter may still be accepted (it is within the
// window and not yet seen). It does not record it: a packet is recorded
// only after it authenticated (update), so forged packets cannot fill the
// window.
func (w *replayWindow) check(counter uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acceptableLocked(counter)
}

func (w *replayWindow) acceptableLocked(counter uint64) bool {
	if !w.any || counter > w.highest {
		return true
	}
	if w.highest-counter >= ReplayWindow {
		return false
	}
	word := (counter / replayWordBits) % replayWords
	return w.ring[word]&(1<<(counter%replayWordBits)) == 0
}

// update records counter. It returns ok=false when the counter was seen or
// fell out of the window meanwhile, and newest=true when it is the highest
// counter accepted so far.
func (w *replayWindow) update(counter uint64) (ok, newest bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.acceptableLocked(counter) {
		return false, false
	}
	if !w.any || counter > w.highest {
		// Clear the words between the old highest and the new one.
		from := w.highest / replayWordBits
		to := counter / replayWordBits
		if !w.any {
			from = to
			w.ring[to%replayWords] = 0
		}
		n := to - from
		if n > replayWords {
			n = replayWords
		}
		for i := uint64(1); i <= n; i++ {
			w.ring[(from+i)%replayWords] = 0
		}
		w.highest = counter
		w.any = true
		newest = true
	}
	w.ring[(counter/replayWordBits)%replayWords] |= 1 << (counter % replayWordBits)
	return true, newest
}
