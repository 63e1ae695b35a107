package reliable

import (
	"math"
	"time"
)

// CUBIC constants (RFC 9438 §4).
const (
	cubicC    = 0.4
	cubicBeta = 0.7
	// Reno-friendly additive increase per RTT, in packets (§4.3).
	cubicAlpha = 3 * (1 - cubicBeta) / (1 + cubicBeta)
)

// HyStart++ constants (RFC 9406 §4.3).
const (
	hystartMinSamples = 8
	hystartMinEta     = 4 * time.Millisecond
	hystartMaxEta     = 16 * time.Millisecond
	hystartCSSGrowth  = 4 // conservative slow start grows a quarter as fast
	hystartCSSRounds  = 5
)

// cubic is a CUBIC congestion controller (RFC 9438) with HyStart++ slow
// start (RFC 9406): slow start leaves early when the RTT rises, before a
// queue overflows, instead of overshooting into a burst of losses.
type cubic struct {
	mss      int
	rtt      *rttStats
	cwnd     int
	ssthresh int

	recoveryStart time.Duration // losses of packets sent before it belong to the same event

	// Congestion avoidance epoch.
	epochStart time.Duration
	wMax       float64 // window before the last reduction, in packets
	lastWMax   float64
	k          float64 // seconds until the window is back at wMax
	origin     float64
	wEst       float64 // Reno-friendly estimate, in packets

	// HyStart++ per-round RTT tracking.
	roundMinRTT, lastRoundMinRTT time.Duration
	cssBaseline                  time.Duration

	// Small fields last, together: the struct then fits 128 bytes, and
	// every Conn holds one.
	rttSamples uint16 // this round's, saturating (HyStart++ needs a few)
	cssRounds  uint8  // up to hystartCSSRounds
	inCSS      bool
	inRecovery bool
}

func newCubic(mss int, rtt *rttStats) *cubic {
	c := &cubic{mss: mss, rtt: rtt}
	c.reset()
	return c
}

func (c *cubic) reset() {
	*c = cubic{mss: c.mss, rtt: c.rtt, cwnd: initialWindowPackets * c.mss, ssthresh: maxWindowBytes,
		roundMinRTT: math.MaxInt64, lastRoundMinRTT: math.MaxInt64, recoveryStart: -1}
}

func (c *cubic) window() int { return c.cwnd }

func (c *cubic) inSlowStart() bool { return c.cwnd < c.ssthresh }

func (c *cubic) pacingRate(srtt time.Duration) uint64 {
	if srtt <= 0 {
		srtt = initialRTT
	}
	// Pace faster than the window strictly needs (Linux: 2× in slow start,
	// 1.2× after) so pacing never limits the window.
	gain := 1.25
	if c.inSlowStart() {
		gain = 2
	}
	return uint64(gain * float64(c.cwnd) / srtt.Seconds())
}

func (c *cubic) onPacketSent(now time.Duration, bytes, inFlight int) {}

func (c *cubic) onAppLimited() {}

func (c *cubic) onAck(now time.Duration, acked int, rs *rateSample) {
	if rs.newRound {
		c.inRecovery = false
	}
	// Grow only while the window is what limits the sender.
	if rs.priorInFlight*2 < c.cwnd {
		return
	}
	if c.inSlowStart() {
		c.slowStart(acked, rs)
		return
	}
	c.congestionAvoidance(now, acked)
}

func (c *cubic) slowStart(acked int, rs *rateSample) {
	// HyStart++: compare this round's minimum RTT with the last round's.
	if rs.rtt > 0 {
		c.roundMinRTT = min(c.roundMinRTT, rs.rtt)
		if c.rttSamples < math.MaxUint16 {
			c.rttSamples++
		}
	}
	if rs.newRound {
		if c.inCSS {
			c.cssRounds++
			if c.cssRounds >= hystartCSSRounds {
				c.ssthresh = c.cwnd // leave slow start for good
				c.inCSS = false
				return
			}
			if c.roundMinRTT < c.cssBaseline {
				c.inCSS = false // the RTT rise was spurious: back to slow start
			}
		}
		c.lastRoundMinRTT, c.roundMinRTT, c.rttSamples = c.roundMinRTT, math.MaxInt64, 0
	}
	if !c.inCSS && c.rttSamples >= hystartMinSamples && c.lastRoundMinRTT != math.MaxInt64 {
		eta := min(max(c.lastRoundMinRTT/8, hystartMinEta), hystartMaxEta)
		if c.roundMinRTT >= c.lastRoundMinRTT+eta {
			c.inCSS, c.cssBaseline, c.cssRounds = true, c.roundMinRTT, 0
		}
	}
	if c.inCSS {
		c.cwnd += acked / hystartCSSGrowth
	} else {
		c.cwnd += acked
	}
	c.cwnd = min(c.cwnd, maxWindowBytes)
}

func (c *cubic) congestionAvoidance(now time.Duration, acked int) {
	mss := float64(c.mss)
	cw := float64(c.cwnd) / mss
	if c.epochStart == 0 {
		c.epochStart = now
		if cw < c.wMax {
			c.k = math.Cbrt((c.wMax - cw) / cubicC)
			c.origin = c.wMax
		} else {
			c.k, c.origin = 0, cw
		}
		c.wEst = cw
	}
	t := (now - c.epochStart + c.rtt.srtt()).Seconds()
	target := c.origin + cubicC*math.Pow(t-c.k, 3)
	target = min(target, 1.5*cw) // RFC 9438 §4.2: at most 50% growth per RTT
	c.wEst += cubicAlpha * float64(acked) / mss / cw
	var inc float64
	if c.wEst > target {
		target = c.wEst // Reno-friendly region
	}
	if target > cw {
		inc = (target - cw) / cw * float64(acked)
	}
	c.cwnd = min(c.cwnd+int(inc), maxWindowBytes)
}

func (c *cubic) onLoss(now time.Duration, lost int, largestLostSent time.Duration, inFlight int) {
	if largestLostSent <= c.recoveryStart {
		return // one reduction per round of losses
	}
	c.recoveryStart = now
	c.inRecovery = true
	c.inCSS = false
	cw := float64(c.cwnd) / float64(c.mss)
	if cw < c.lastWMax {
		c.wMax = cw * (1 + cubicBeta) / 2 // fast convergence: yield to newer flows
	} else {
		c.wMax = cw
	}
	c.lastWMax = cw
	c.cwnd = max(int(float64(c.cwnd)*cubicBeta), minWindowPackets*c.mss)
	c.ssthresh = c.cwnd
	c.epochStart = 0
}

func (c *cubic) onPersistentCongestion(now time.Duration) {
	c.cwnd = minWindowPackets * c.mss
	c.ssthresh = max(c.ssthresh/2, c.cwnd)
	c.epochStart = 0
	c.wMax, c.lastWMax = 0, 0
	c.recoveryStart = now
}
