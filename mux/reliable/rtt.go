package reliable

import "time"

// Loss-recovery constants (RFC 9002 §6, §A.2).
const (
	initialRTT         = 100 * time.Millisecond
	timerGranularity   = time.Millisecond
	packetThreshold    = 3
	maxPacketThreshold = 32
)

// rttStats estimates the path's round-trip time as RFC 9002 §5 does.
type rttStats struct {
	latest, smoothed, rttvar, min time.Duration
	hasSample                     bool
}

// update takes an RTT sample; ackDelay is what the peer said it held the
// packet, trusted up to maxAckDelay.
func (r *rttStats) update(sample, ackDelay, maxAckDelay time.Duration) {
	if sample <= 0 {
		sample = time.Microsecond
	}
	r.latest = sample
	if !r.hasSample {
		r.hasSample = true
		r.min, r.smoothed, r.rttvar = sample, sample, sample/2
		return
	}
	r.min = min(r.min, sample)
	ackDelay = min(ackDelay, maxAckDelay)
	adjusted := sample
	if sample >= r.min+ackDelay {
		adjusted -= ackDelay
	}
	d := r.smoothed - adjusted
	if d < 0 {
		d = -d
	}
	r.rttvar = (3*r.rttvar + d) / 4
	r.smoothed = (7*r.smoothed + adjusted) / 8
}

// srtt is the smoothed RTT, or the initial guess before any sample.
func (r *rttStats) srtt() time.Duration {
	if !r.hasSample {
		return initialRTT
	}
	return r.smoothed
}

// pto is the probe timeout before backoff (RFC 9002 §6.2.1).
func (r *rttStats) pto(maxAckDelay time.Duration) time.Duration {
	if !r.hasSample {
		return 2*initialRTT + maxAckDelay
	}
	return r.smoothed + max(4*r.rttvar, timerGranularity) + maxAckDelay
}

// reset forgets the path (after an address change).
func (r *rttStats) reset() { *r = rttStats{} }

// windowedFilter tracks the maximum (or minimum) of samples over a sliding
// window of time or rounds, keeping the best three candidates as Kathleen
// Nichols' algorithm (used by BBR) does, in constant space.
type windowedFilter struct {
	est   [3]struct{ v, t int64 }
	isMin bool
	set   bool
}

func (f *windowedFilter) better(a, b int64) bool {
	if f.isMin {
		return a <= b
	}
	return a >= b
}

// update adds sample v at time t with window length w.
func (f *windowedFilter) update(v, t, w int64) {
	if !f.set || f.better(v, f.est[0].v) || t-f.est[2].t > w {
		f.est[0].v, f.est[0].t = v, t
		f.est[1], f.est[2] = f.est[0], f.est[0]
		f.set = true
		return
	}
	if f.better(v, f.est[1].v) {
		f.est[1].v, f.est[1].t = v, t
		f.est[2] = f.est[1]
	} else if f.better(v, f.est[2].v) {
		f.est[2].v, f.est[2].t = v, t
	}
	// Expire the best when it fell out of the window; promote the others.
	if t-f.est[0].t > w {
		f.est[0], f.est[1] = f.est[1], f.est[2]
		f.est[2].v, f.est[2].t = v, t
		if t-f.est[0].t > w {
			f.est[0], f.est[1] = f.est[1], f.est[2]
		}
		return
	}
	if f.est[1].t == f.est[0].t && t-f.est[1].t > w/4 {
		f.est[1].v, f.est[1].t = v, t
		f.est[2] = f.est[1]
		return
	}
	if f.est[2].t == f.est[1].t && t-f.est[2].t > w/2 {
		f.est[2].v, f.est[2].t = v, t
	}
}

func (f *windowedFilter) get() int64 { return f.est[0].v }

func (f *windowedFilter) reset() { *f = windowedFilter{isMin: f.isMin} }
