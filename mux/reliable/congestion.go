package reliable

import "time"

// CongestionAlgorithm selects a Conn's congestion controller.
type CongestionAlgorithm string

const (
	// CUBIC (RFC 9438) with HyStart++ slow start: the loss-based default.
	CUBIC CongestionAlgorithm = "cubic"
	// BBR is a model-based controller (after BBR v1): it paces at the
	// measured bottleneck bandwidth and keeps about one bandwidth-delay
	// product in flight, so random loss does not shrink its rate.
	BBR CongestionAlgorithm = "bbr"
)

// rateSample is what one ACK taught about the path's delivery rate
// (draft-cheng-iccrg-delivery-rate-estimation).
type rateSample struct {
	deliveryRate  uint64 // bytes/s, 0 when the sample is not valid
	delivered     uint64 // bytes delivered over the interval
	interval      time.Duration
	priorInFlight int
	appLimited    bool
	newRound      bool // the ACK starts a new round trip
	rtt           time.Duration
	lost          int // bytes newly declared lost by this ACK
}

// congestionController decides how many bytes may be in flight and how
// fast to pace them. Times are on the Muxer's monotonic clock.
type congestionController interface {
	onPacketSent(now time.Duration, bytes, inFlight int)
	// onAck is called once per ACK frame that acknowledged new data.
	onAck(now time.Duration, acked int, rs *rateSample)
	// onLoss is called once per batch of packets declared lost;
	// largestLostSent is when the newest of them was sent.
	onLoss(now time.Duration, lost int, largestLostSent time.Duration, inFlight int)
	onPersistentCongestion(now time.Duration)
	// onAppLimited tells the controller the sender had nothing to send
	// while the window allowed more.
	onAppLimited()
	window() int
	// pacingRate in bytes per second.
	pacingRate(srtt time.Duration) uint64
	// reset forgets the path (address change).
	reset()
}

func newController(alg CongestionAlgorithm, mss int, rtt *rttStats) congestionController {
	if alg == BBR {
		return newBBR(mss, rtt)
	}
	return newCubic(mss, rtt)
}

// Window bounds shared by the controllers, in packets.
const (
	initialWindowPackets = 32
	minWindowPackets     = 2
	maxWindowBytes       = 1 << 30
)
