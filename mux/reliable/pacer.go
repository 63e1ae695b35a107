package reliable

import "time"

// pacer spreads a connection's packets over time at the congestion
// controller's rate with a token bucket. It needs no timer per packet: the
// event loop sends a burst (the bucket's size, about a millisecond of
// sending) and sets one timer for when the next burst may go.
type pacer struct {
	tokens int // bytes that may be sent now (may go negative by one packet)
	last   time.Duration
	rate   uint64 // bytes/s
	burst  int
}

const (
	pacingQuantum   = 4 * time.Millisecond // how much sending a burst may hold
	minBurstPackets = 10
	// minPacingDelay bounds how often the loop wakes for one connection.
	minPacingDelay = 250 * time.Microsecond
)

func (p *pacer) setRate(rate uint64, mss int) {
	p.rate = rate
	p.burst = max(minBurstPackets*mss, int(rate*uint64(pacingQuantum)/uint64(time.Second)))
}

// refill adds the tokens earned since the last call.
func (p *pacer) refill(now time.Duration) {
	if p.rate == 0 {
		p.tokens = p.burst
		p.last = now
		return
	}
	if now > p.last {
		earned := float64(now-p.last) * float64(p.rate) / float64(time.Second)
		p.tokens = int(min(float64(p.tokens)+earned, float64(p.burst)))
		p.last = now
	}
}

// canSend reports whether a packet may leave now.
func (p *pacer) canSend(now time.Duration) bool {
	if p.rate == 0 {
		return true // not pacing
	}
	p.refill(now)
	return p.tokens > 0
}

func (p *pacer) onSent(bytes int) { p.tokens -= bytes }

// next is when the pacer will allow a packet again.
func (p *pacer) next(now time.Duration, mss int) time.Duration {
	if p.tokens > 0 || p.rate == 0 {
		return now
	}
	// Wait until a whole packet's worth is earned (or a minimum delay, so
	// that fast links are served in bursts, not by per-packet wakeups).
	need := uint64(mss - p.tokens)
	d := time.Duration(need * uint64(time.Second) / p.rate)
	return now + max(d, minPacingDelay)
}
