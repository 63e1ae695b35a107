package reliable

import (
	"sync"
	"time"

	"github.com/ipv8/go-ipv8/mux"
	"github.com/ipv8/go-ipv8/transport"
)

// connStats counts what a connection sent, received and lost.
type connStats struct {
	packetsSent, bytesSent         uint64
	packetsReceived, bytesReceived uint64
	packetsLost, bytesLost         uint64
	retransmissions                uint64
	spuriousLosses                 uint64
	probeTimeouts                  uint64
	duplicates, malformed          uint64
	datagramsDropped               uint64
}

// Stats reports what the connection measured of its path.
func (c *conn) Stats() transport.Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.statsLocked()
}

func (c *conn) statsLocked() transport.Stats {
	s := transport.Stats{
		CongestionWindow: uint64(c.cc.window()),
		BytesInFlight:    uint64(c.bytesInFlight),
		Bandwidth:        uint64(c.bwFilter.get()),
		BytesSent:        c.stats.bytesSent,
		BytesReceived:    c.stats.bytesReceived,
		PacketsSent:      c.stats.packetsSent,
		PacketsReceived:  c.stats.packetsReceived,
		PacketsLost:      c.stats.packetsLost,
		BytesLost:        c.stats.bytesLost,
		Retransmissions:  c.stats.retransmissions,
		Path:             c.pathKind(),
		Opened:           c.m.epoch.Add(c.opened),
	}
	if c.rtt.hasSample {
		s.SmoothedRTT, s.MinRTT, s.LatestRTT, s.RTTVar = c.rtt.smoothed, c.rtt.min, c.rtt.latest, c.rtt.rttvar
	}
	return s
}

func (c *conn) pathKind() transport.PathKind {
	if pk, ok := c.sess.(mux.PathKinder); ok {
		return pk.PathKind()
	}
	return transport.PathDirect
}

// Thresholds for a "significant" path change.
const (
	pathCheckMin      = 100 * time.Millisecond // evaluate at most this often (or once per RTT if longer)
	rttShiftFraction  = 0.25                   // smoothed RTT moved by a quarter…
	rttShiftMin       = 2 * time.Millisecond   // …and by at least this much
	lossSpikeMinRate  = 0.05                   // an interval's loss rate above 5%…
	lossSpikeFactor   = 2                      // …and twice the long-run rate
	lossSpikeMinCount = 3
	bandwidthFactor   = 2 // the estimate halved or doubled
	pathSubscriberCap = 4
)

// pathWatch notices significant changes of the path and tells subscribers.
type pathWatch struct {
	subs      []chan transport.PathEvent
	lastCheck time.Duration
	rtt       time.Duration // smoothed RTT last reported (or first measured)
	bw        uint64
	sent      uint64 // packets sent at the last check
	lostBase  uint64
	lost      uint64 // packets lost (running count, compared per interval)
}

// SubscribePathChanges returns a channel of path events (RTT shift,
// address change, loss spike, bandwidth change) and a function that ends
// the subscription. A slow subscriber gets older events folded into newer
// ones: it never misses a kind of change, nor the latest Stats.
func (c *conn) SubscribePathChanges() (<-chan transport.PathEvent, func()) {
	ch := make(chan transport.PathEvent, pathSubscriberCap)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		close(ch)
		return ch, func() {}
	}
	if c.path == nil {
		// Watching starts with the first subscriber; until then the
		// watch counted nothing but the losses, which Stats has.
		c.path = &pathWatch{lost: c.stats.packetsLost}
	}
	c.path.subs = append(c.path.subs, ch)
	c.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			for i, x := range c.path.subs {
				if x == ch {
					c.path.subs = append(c.path.subs[:i], c.path.subs[i+1:]...)
					close(ch)
					return
				}
			}
		})
	}
}

func (w *pathWatch) closeAll() {
	if w == nil {
		return
	}
	for _, ch := range w.subs {
		close(ch)
	}
	w.subs = nil
}

func (w *pathWatch) publish(c *conn, change transport.PathChange) {
	ev := transport.PathEvent{Change: change, Stats: c.statsLocked()}
	for _, ch := range w.subs {
		e := ev
		for {
			select {
			case ch <- e:
			default:
				// Full: fold the oldest event's changes into this one, so a
				// slow subscriber still learns every kind of change.
				select {
				case old := <-ch:
					e.Change |= old.Change
				default:
				}
				continue
			}
			break
		}
	}
}

// onAck evaluates RTT, loss and bandwidth changes, at most once per RTT
// (and per 100 ms).
func (w *pathWatch) onAck(c *conn, now time.Duration) {
	if w == nil || len(w.subs) == 0 || now-w.lastCheck < max(pathCheckMin, c.rtt.srtt()) {
		return
	}
	w.lastCheck = now
	var change transport.PathChange
	if c.rtt.hasSample {
		if w.rtt == 0 {
			w.rtt = c.rtt.smoothed
		} else if d := absDur(c.rtt.smoothed - w.rtt); d >= rttShiftMin && float64(d) >= rttShiftFraction*float64(w.rtt) {
			change |= transport.PathRTTChanged
			w.rtt = c.rtt.smoothed
		}
	}
	sent := c.stats.packetsSent - w.sent
	lost := w.lost - w.lostBase
	if sent > 0 && lost >= lossSpikeMinCount {
		rate := float64(lost) / float64(sent)
		longRun := float64(c.stats.packetsLost) / float64(max(c.stats.packetsSent, 1))
		if rate >= lossSpikeMinRate && rate >= lossSpikeFactor*longRun*0.999 && c.stats.packetsSent > sent {
			change |= transport.PathLossSpike
		} else if c.stats.packetsSent == sent && rate >= lossSpikeMinRate {
			change |= transport.PathLossSpike // the first interval already lossy
		}
	}
	w.sent, w.lostBase = c.stats.packetsSent, w.lost
	if bw := uint64(c.bwFilter.get()); bw > 0 {
		if w.bw == 0 {
			w.bw = bw
		} else if bw >= bandwidthFactor*w.bw || bw*bandwidthFactor <= w.bw {
			change |= transport.PathBandwidthChanged
			w.bw = bw
		}
	}
	if change != 0 {
		w.publish(c, change)
	}
}

// checkPath notices that the session moved to a new address (the peer
// roamed or its NAT rebound). A new IP is a new path: congestion state and
// RTT start over (RFC 9000 §9.4); a new port alone keeps them.
func (c *conn) checkPath(now time.Duration) {
	addr := c.sess.RemoteAddr()
	if addr == c.remoteAddr {
		return
	}
	old := c.remoteAddr
	c.remoteAddr = addr
	if old.Addr() != addr.Addr() && old.IsValid() {
		c.cc.reset()
		c.rtt.reset()
		c.bwFilter.reset()
		c.pacer.setRate(c.cc.pacingRate(0), c.maxPacket)
		if c.path != nil {
			c.path.rtt, c.path.bw = 0, 0
		}
	}
	c.m.cfg.Logger.Debug("mux: path moved", "peer", c.sess.RemotePeer(), "from", old, "to", addr)
	if c.path != nil && len(c.path.subs) > 0 {
		c.path.publish(c, transport.PathAddressChanged)
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
