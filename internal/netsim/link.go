package netsim

import (
	"math/rand/v2"
	"time"
)

// DefaultReorderDelay is how long a reordered packet is held back when
// Link.ReorderDelay is zero.
const DefaultReorderDelay = 10 * time.Millisecond

// minQueueBytes is the smallest default queue: about ten full packets.
const minQueueBytes = 16 << 10

// Link describes an access link (of a host, or a NAT's WAN side). It applies
// to each direction separately: up and down have the same parameters but
// their own queues, so a link is full duplex.
type Link struct {
	// Latency is the one-way propagation delay of the link.
	Latency time.Duration
	// Jitter adds a uniform random delay in [0, Jitter) to each packet,
	// without reordering (see the package doc).
	Jitter time.Duration
	// Bandwidth is the rate in UDP payload bytes per second; 0 is unlimited.
	Bandwidth int64
	// DownBandwidth, if not 0, is the rate of the down direction (towards
	// the host or NAT), for asymmetric links such as ADSL or cable;
	// Bandwidth is then the up rate.
	DownBandwidth int64
	// QueueBytes is the buffer in front of each direction of the link; a
	// packet that would make the backlog exceed it is tail-dropped. 0 means
	// a tenth of a second's worth at the direction's rate, but at least
	// 16 KiB.
	QueueBytes int
	// Loss, Duplicate and Reorder are probabilities in [0, 1].
	Loss, Duplicate, Reorder float64
	// ReorderDelay is the extra delay of a reordered packet; 0 means
	// DefaultReorderDelay.
	ReorderDelay time.Duration
	// MTU is the largest UDP payload the link carries; 0 means the
	// network's (Config.MTU).
	MTU int
}

// rate is the bandwidth of one direction.
func (l *Link) rate(down bool) int64 {
	if down && l.DownBandwidth != 0 {
		return l.DownBandwidth
	}
	return l.Bandwidth
}

func (l *Link) queueBytes(rate int64) int {
	if l.QueueBytes > 0 {
		return l.QueueBytes
	}
	return max(int(rate/10), minQueueBytes)
}

func (l *Link) reorderDelay() time.Duration {
	if l.ReorderDelay > 0 {
		return l.ReorderDelay
	}
	return DefaultReorderDelay
}

// pipe is the state of one direction of a link.
type pipe struct {
	busyUntil   time.Duration // when the last queued packet has left
	lastArrival time.Duration // arrival of the last in-order packet, for FIFO jitter
	rng         rand.PCG
	down        bool // towards the host or NAT (DownBandwidth applies)
}

func (p *pipe) float() float64 {
	return float64(p.rng.Uint64()>>11) / (1 << 53)
}

// verdict is what a pipe decided for one packet.
type verdict struct {
	arrival time.Duration
	drop    DropReason // dropNone when the packet goes on
	dup     bool
	reorder bool
}

// transmit passes a packet of size bytes into the pipe at time t and
// decides its fate. The order of the steps is the package doc's: MTU,
// queue, loss, delay, reordering, duplication.
func (p *pipe) transmit(l *Link, mtu int, size int, t time.Duration) verdict {
	if l.MTU > 0 && l.MTU < mtu {
		mtu = l.MTU
	}
	if size > mtu {
		return verdict{drop: DropMTU}
	}
	depart := t
	if rate := l.rate(p.down); rate > 0 {
		start := max(t, p.busyUntil)
		backlog := float64(start-t) * float64(rate) / float64(time.Second)
		if backlog+float64(size) > float64(l.queueBytes(rate)) {
			return verdict{drop: DropQueue}
		}
		depart = start + time.Duration(int64(size)*int64(time.Second)/rate)
		p.busyUntil = depart
	}
	if l.Loss > 0 && p.float() < l.Loss {
		return verdict{drop: DropLoss}
	}
	arrival := depart + l.Latency
	if l.Jitter > 0 {
		arrival += time.Duration(p.float() * float64(l.Jitter))
	}
	var v verdict
	if l.Reorder > 0 && p.float() < l.Reorder {
		// Held back outside the FIFO order: later packets may overtake it.
		v.reorder = true
		arrival += l.reorderDelay()
	} else {
		arrival = max(arrival, p.lastArrival)
		p.lastArrival = arrival
	}
	if l.Duplicate > 0 && p.float() < l.Duplicate {
		v.dup = true
	}
	v.arrival = arrival
	v.drop = dropNone
	return v
}
