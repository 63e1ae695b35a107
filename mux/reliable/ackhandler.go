package reliable

import "time"

// maxTrackedRanges bounds the received packet-number ranges a connection
// remembers (and reports in one ACK). Older ranges are forgotten; a packet
// below them is treated as a duplicate (its data was resent long ago).
const maxTrackedRanges = 32

// ackState is the receive side of packet numbers: what arrived, and when
// an ACK is owed. It follows the peer's ACK_FREQUENCY request: acknowledge
// after threshold ack-eliciting packets or maxDelay, and at once when
// packets arrive out of order (so the sender learns of a loss quickly).
type ackState struct {
	ranges      rangeSet
	ignoreBelow uint64
	largest     uint64
	largestAt   time.Duration

	eliciting int
	ackAt     time.Duration

	threshold int
	maxDelay  time.Duration
	freqSeq   uint64

	// The flags together, so that they pack.
	hasLargest bool
	pending    bool // an ack-eliciting packet is not yet acknowledged
	immediate  bool
	freqSeen   bool

	// scratch is the ACK frame built for sending, and the one an ACK
	// received is parsed into: both are used under the Conn's lock, each
	// within one critical section, so one buffer serves both.
	scratch ackFrame
}

func (a *ackState) init() {
	a.threshold, a.maxDelay = defaultAckThreshold, defaultMaxAckDelay
}

func (a *ackState) isDuplicate(pn uint64) bool {
	return pn < a.ignoreBelow || a.ranges.contains(pn)
}

func (a *ackState) onReceived(pn uint64, eliciting bool, now time.Duration) {
	outOfOrder := a.hasLargest && pn != a.largest+1
	a.ranges.add(pn, pn+1)
	if len(a.ranges.s) > maxTrackedRanges {
		a.ignoreBelow = a.ranges.s[1].start
		a.ranges.trimBelow(a.ignoreBelow)
	}
	if !a.hasLargest || pn > a.largest {
		a.largest, a.largestAt, a.hasLargest = pn, now, true
	}
	if !eliciting {
		return
	}
	a.pending = true
	a.eliciting++
	if outOfOrder || a.eliciting >= a.threshold {
		a.immediate = true
	}
	if a.ackAt == 0 {
		a.ackAt = now + a.maxDelay
	}
}

// due reports whether an ACK must go out now.
func (a *ackState) due(now time.Duration) bool {
	return a.pending && (a.immediate || now >= a.ackAt)
}

// frame builds the ACK frame for what was received and marks it sent.
func (a *ackState) frame(now time.Duration) *ackFrame {
	f := &a.scratch
	f.ranges = f.ranges[:0]
	for i := len(a.ranges.s) - 1; i >= 0; i-- {
		f.ranges = append(f.ranges, ackRange{smallest: a.ranges.s[i].start, largest: a.ranges.s[i].end - 1})
	}
	f.ackDelay = max(now-a.largestAt, 0)
	a.pending, a.eliciting, a.ackAt, a.immediate = false, 0, 0, false
	return f
}

func (a *ackState) onAckFrequency(f ackFrequencyFrame) {
	if a.freqSeen && f.seq <= a.freqSeq {
		return
	}
	a.freqSeen, a.freqSeq = true, f.seq
	a.threshold = int(f.threshold)
	a.maxDelay = max(f.maxAckDelay, timerGranularity)
}

// wantAckFrequency computes what the sender should ask of the peer: an ACK
// per eighth of the window (2 to 32 packets) and a delay of a quarter of
// the minimum RTT (1 to 25 ms). Fewer ACKs cost less CPU at both ends and
// on the path; enough ACKs keep the window and the bandwidth estimate fresh.
func (c *conn) wantAckFrequency() (uint64, time.Duration) {
	pkts := uint64(c.cc.window() / c.maxPacket)
	th := min(max(pkts/8, defaultAckThreshold), 32)
	d := defaultMaxAckDelay
	if c.rtt.hasSample {
		d = min(max(c.rtt.min/4, time.Millisecond), 25*time.Millisecond)
	}
	return th, d
}

// maybeUpdateAckFrequency queues an ACK_FREQUENCY frame when the wanted
// values moved by a factor of two (at most once per RTT).
func (c *conn) maybeUpdateAckFrequency(now time.Duration) {
	if c.needAckFreq || now-c.ackFreqAt < c.rtt.srtt() {
		return
	}
	th, d := c.wantAckFrequency()
	cur, curD := uint64(c.ackFreqThreshold), c.ackFreqDelay
	if cur == 0 {
		cur, curD = defaultAckThreshold, defaultMaxAckDelay
	}
	if th >= 2*cur || 2*th <= cur || d >= 2*curD || 2*d <= curD {
		c.ackFreqThreshold, c.ackFreqDelay = uint32(th), d // th ≤ 32
		c.needAckFreq = true
	}
}
