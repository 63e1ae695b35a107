package noise

import (
	"math"
	"sync"
)

// The replay window is a ring of bits, one per counter value, covering the
// ReplayWindow counters up to the highest accepted: counter c lives at bit
// c mod ReplayWindow. When the highest counter moves forward, the bits of
// the counters it passes are cleared (they held counters that just fell
// out of the window), a word at a time where whole words are passed, so a
// packet costs at most one sweep of the ring however far the counter
// jumped. Unlike RFC 6479's layout, which clears only whole words and so
// needs a spare one, the ring is exactly the window: 256 bytes for 2048
// packets, which keeps a keypair in the allocator's 384-byte size class.
const (
	replayWordBits = 64
	replayWords    = 32
	// ReplayWindow is how far behind the highest counter received a packet
	// may arrive and still be accepted once: counters highest-2047 to
	// highest.
	ReplayWindow = replayWords * replayWordBits // 2048
)

// replayWindow drops duplicated and replayed packets of one receiving key.
type replayWindow struct {
	mu   sync.Mutex
	next uint64 // one past the highest counter accepted; 0 before the first
	ring [replayWords]uint64
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
	if counter == math.MaxUint64 {
		return false // Noise reserves the last nonce; next could not hold it
	}
	if counter >= w.next {
		return true
	}
	if w.next-1-counter >= ReplayWindow {
		return false
	}
	return w.ring[(counter%ReplayWindow)/replayWordBits]&(1<<(counter%replayWordBits)) == 0
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
	if counter >= w.next {
		// The counters from next to counter enter the window: their bits
		// still describe counters ReplayWindow older, which leave it.
		if w.next == 0 || counter-w.next >= ReplayWindow {
			w.ring = [replayWords]uint64{}
		} else {
			w.clearBits(w.next, counter-w.next+1)
		}
		w.next = counter + 1
		newest = true
	}
	w.ring[(counter%ReplayWindow)/replayWordBits] |= 1 << (counter % replayWordBits)
	return true, newest
}

// clearBits clears the bits of the n counters from start on (n ≤
// ReplayWindow).
func (w *replayWindow) clearBits(start, n uint64) {
	for n > 0 {
		pos := start % ReplayWindow
		bit := pos % replayWordBits
		k := min(n, replayWordBits-bit)
		mask := ^uint64(0)
		if k < replayWordBits {
			mask = (1<<k - 1) << bit
		}
		w.ring[pos/replayWordBits] &^= mask
		start += k
		n -= k
	}
}
