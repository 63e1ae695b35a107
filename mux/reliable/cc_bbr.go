package reliable

import "time"

// BBR constants (after BBR v1, draft-cardwell-iccrg-bbr-congestion-control-00).
const (
	bbrHighGain          = 2.885 // 2/ln 2: doubles the rate each round in startup
	bbrDrainGain         = 1 / bbrHighGain
	bbrCwndGain          = 2.0
	bbrBwWindowRounds    = 10
	bbrMinRTTWindow      = 10 * time.Second
	bbrProbeRTTDuration  = 200 * time.Millisecond
	bbrProbeRTTCwndPkts  = 4
	bbrFullBwThreshold   = 1.25
	bbrFullBwRounds      = 3
	bbrHighLossThreshold = 0.15 // a round losing more than this is treated as congestion (BBR v2's idea)
	bbrLossMinPackets    = 20   // rounds smaller than this say too little about the loss rate
)

var bbrPacingGainCycle = [8]float64{1.25, 0.75, 1, 1, 1, 1, 1, 1}

type bbrState uint8

const (
	bbrStartup bbrState = iota
	bbrDrain
	bbrProbeBW
	bbrProbeRTT
)

// bbr is a model-based congestion controller: it estimates the bottleneck
// bandwidth (a windowed maximum of delivery-rate samples) and the minimum
// RTT, paces at gain × bandwidth and keeps about two bandwidth-delay
// products in flight. Unlike CUBIC, random loss does not cut its rate; a
// round that loses more than 15% lowers the in-flight bound (BBR v2's
// response), so it does not keep overflowing a shallow queue.
type bbr struct {
	mss int
	rtt *rttStats

	state      bbrState
	btlBw      windowedFilter // bytes/s, window in rounds
	round      int64
	minRTT     time.Duration
	minRTTAt   time.Duration
	pacingGain float64
	cwndGain   float64
	cwnd       int
	inflightHi int // upper bound after heavy loss; 0 = none

	fullBw       uint64
	fullBwRounds int
	filledPipe   bool

	cycleIndex int
	cycleStart time.Duration

	probeRTTDone     time.Duration
	probeRTTRoundEnd bool
	priorCwnd        int

	roundDelivered, roundLost int
	appLimited                bool
}

func newBBR(mss int, rtt *rttStats) *bbr {
	b := &bbr{mss: mss, rtt: rtt}
	b.reset()
	return b
}

func (b *bbr) reset() {
	*b = bbr{mss: b.mss, rtt: b.rtt, state: bbrStartup, pacingGain: bbrHighGain, cwndGain: bbrHighGain,
		cwnd: initialWindowPackets * b.mss}
}

func (b *bbr) bw() uint64 { return uint64(b.btlBw.get()) }

func (b *bbr) bdp(gain float64) int {
	if b.minRTT == 0 || b.bw() == 0 {
		return initialWindowPackets * b.mss
	}
	return int(gain * float64(b.bw()) * b.minRTT.Seconds())
}

func (b *bbr) window() int {
	w := b.cwnd
	if b.state == bbrProbeRTT {
		w = min(w, bbrProbeRTTCwndPkts*b.mss)
	}
	if b.inflightHi > 0 {
		w = min(w, b.inflightHi)
	}
	return max(w, bbrProbeRTTCwndPkts*b.mss)
}

func (b *bbr) pacingRate(srtt time.Duration) uint64 {
	if b.bw() == 0 {
		if srtt <= 0 {
			srtt = initialRTT
		}
		return uint64(b.pacingGain * float64(b.cwnd) / srtt.Seconds())
	}
	return uint64(b.pacingGain * float64(b.bw()))
}

func (b *bbr) onPacketSent(now time.Duration, bytes, inFlight int) {}

func (b *bbr) onAppLimited() { b.appLimited = true }

func (b *bbr) onAck(now time.Duration, acked int, rs *rateSample) {
	if rs.newRound {
		b.round++
		b.endRound()
	}
	b.roundDelivered += acked
	// Bandwidth: app-limited samples count only when they raise the estimate.
	if rs.deliveryRate > 0 && (!rs.appLimited || rs.deliveryRate >= b.bw()) {
		b.btlBw.update(int64(rs.deliveryRate), b.round, bbrBwWindowRounds)
	}
	// Minimum RTT over a 10 s window.
	expired := now-b.minRTTAt > bbrMinRTTWindow
	if rs.rtt > 0 && (b.minRTT == 0 || rs.rtt <= b.minRTT || expired) {
		b.minRTT, b.minRTTAt = rs.rtt, now
		expired = false
	}
	if rs.newRound && !b.filledPipe && !rs.appLimited {
		b.checkFullPipe()
	}
	switch b.state {
	case bbrStartup:
		if b.filledPipe {
			b.state, b.pacingGain, b.cwndGain = bbrDrain, bbrDrainGain, bbrHighGain
		}
	case bbrDrain:
		if rs.priorInFlight <= b.bdp(1) {
			b.enterProbeBW(now)
		}
	case bbrProbeBW:
		b.advanceCycle(now, rs.priorInFlight)
	case bbrProbeRTT:
		if b.probeRTTDone == 0 && rs.priorInFlight <= bbrProbeRTTCwndPkts*b.mss {
			b.probeRTTDone = now + bbrProbeRTTDuration
		}
		if b.probeRTTDone != 0 && now >= b.probeRTTDone {
			b.minRTTAt = now
			b.cwnd = max(b.cwnd, b.priorCwnd)
			if b.filledPipe {
				b.enterProbeBW(now)
			} else {
				b.state, b.pacingGain, b.cwndGain = bbrStartup, bbrHighGain, bbrHighGain
			}
		}
	}
	if expired && b.state != bbrProbeRTT && !b.appLimited {
		b.state, b.pacingGain, b.cwndGain = bbrProbeRTT, 1, 1
		b.priorCwnd, b.probeRTTDone = b.cwnd, 0
	}
	b.appLimited = false
	// Window: grow towards cwndGain × BDP.
	target := b.bdp(b.cwndGain) + 3*b.mss
	if b.filledPipe {
		b.cwnd = min(b.cwnd+acked, target)
	} else if b.cwnd < target || b.bw() == 0 {
		b.cwnd += acked
	}
	b.cwnd = min(max(b.cwnd, minWindowPackets*b.mss), maxWindowBytes)
}

func (b *bbr) endRound() {
	if total := b.roundDelivered + b.roundLost; total >= bbrLossMinPackets*b.mss && b.roundLost > 0 &&
		float64(b.roundLost)/float64(total) > bbrHighLossThreshold {
		// Heavy loss: bound what is in flight below what was delivered,
		// but never below 1.5 × the measured BDP. Random loss does not
		// lower the bandwidth the path delivers; with 1.5 BDP in flight
		// even 10% loss leaves the pipe full, so the estimate (and the
		// bound) cannot spiral down, while a queue that overflows still
		// sees less in flight than the usual 2 BDP.
		b.inflightHi = max(int(float64(b.roundDelivered)*0.85), b.bdp(1.5), bbrProbeRTTCwndPkts*b.mss)
		if !b.filledPipe {
			b.filledPipe = true
		}
	} else if b.inflightHi > 0 {
		b.inflightHi += b.inflightHi / 4 // probe back up
		if b.inflightHi > b.bdp(b.cwndGain)*2 {
			b.inflightHi = 0
		}
	}
	b.roundDelivered, b.roundLost = 0, 0
}

func (b *bbr) checkFullPipe() {
	if float64(b.bw()) >= float64(b.fullBw)*bbrFullBwThreshold {
		b.fullBw, b.fullBwRounds = b.bw(), 0
		return
	}
	b.fullBwRounds++
	if b.fullBwRounds >= bbrFullBwRounds {
		b.filledPipe = true
	}
}

func (b *bbr) enterProbeBW(now time.Duration) {
	b.state, b.cwndGain = bbrProbeBW, bbrCwndGain
	b.cycleIndex = 2 // start cruising, not probing
	b.cycleStart = now
	b.pacingGain = bbrPacingGainCycle[b.cycleIndex]
}

func (b *bbr) advanceCycle(now time.Duration, inFlight int) {
	elapsed := now-b.cycleStart > max(b.minRTT, time.Millisecond)
	switch b.pacingGain {
	case 1.25:
		if !elapsed || inFlight < b.bdp(1.25) {
			return
		}
	case 0.75:
		if !elapsed && inFlight > b.bdp(1) {
			return
		}
	default:
		if !elapsed {
			return
		}
	}
	b.cycleIndex = (b.cycleIndex + 1) % len(bbrPacingGainCycle)
	b.cycleStart = now
	b.pacingGain = bbrPacingGainCycle[b.cycleIndex]
}

func (b *bbr) onLoss(now time.Duration, lost int, largestLostSent time.Duration, inFlight int) {
	b.roundLost += lost
}

func (b *bbr) onPersistentCongestion(now time.Duration) {
	b.cwnd = bbrProbeRTTCwndPkts * b.mss
}
