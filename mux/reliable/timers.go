package reliable

import (
	"math"
	"time"

	"github.com/ipv8/go-ipv8/security"
	"github.com/ipv8/go-ipv8/transport"
)

// Every timer of a connection in one place. A connection has a single
// entry in the Muxer's timer heap, at the earliest of: the ACK delay, the
// loss or probe timeout, the pacer's next release, the keep-alive and the
// idle timeout.

const noDeadline = time.Duration(math.MaxInt64)

func (c *conn) nextDeadline(now time.Duration) time.Duration {
	if c.closed {
		return noDeadline
	}
	d := c.lastRecv + c.m.cfg.IdleTimeout
	if ka := c.m.cfg.KeepAlive; ka > 0 {
		d = min(d, max(c.lastElicitSent, c.lastKeepAlive)+ka)
	}
	if c.ack.pending && !c.ack.immediate {
		d = min(d, c.ack.ackAt)
	}
	if c.lossTime != 0 {
		d = min(d, c.lossTime)
	} else if pto := c.ptoDeadline(); pto != 0 {
		d = min(d, pto)
	}
	if c.pacingBlocked {
		d = min(d, c.pacer.next(now, c.maxPacket))
	}
	return d
}

// onTimers runs what is due at now.
func (c *conn) onTimers(now time.Duration) {
	if sessionEnded(c.sess) {
		c.closeLocked(c.sessionEndedErr(), nil)
		return
	}
	if now >= c.lastRecv+c.m.cfg.IdleTimeout {
		c.closeLocked(&transport.ConnError{Code: transport.CodeConnClosing, Reason: ErrIdleTimeout.Error()}, nil)
		return
	}
	if (c.lossTime != 0 && now >= c.lossTime) || (c.lossTime == 0 && c.ptoDeadline() != 0 && now >= c.ptoDeadline()) {
		c.onLossTimeout(now)
	}
	if ka := c.m.cfg.KeepAlive; ka > 0 && now >= max(c.lastElicitSent, c.lastKeepAlive)+ka {
		c.needPing = true
		c.lastKeepAlive = now
	}
}

// updateTimerLocked moves the connection's heap entry to its next deadline.
func (c *conn) updateTimerLocked(now time.Duration) {
	// A later deadline leaves the entry where it is: the loop then wakes
	// early once, finds nothing due and re-arms. That saves moving the
	// entry for every packet (each one pushes the probe timeout back).
	d := c.nextDeadline(now)
	if d < c.timerSet || c.timerSet < 0 || (d == noDeadline) != (c.timerSet == noDeadline) {
		c.timerSet = d
		c.m.setTimer(c, d)
	}
}

// wantsService reports whether the event loop should run the connection
// now (after a packet arrived).
func (c *conn) wantsService(now time.Duration) bool {
	return c.closed || c.ack.due(now) || (c.hasPending() && c.bytesInFlight < c.cc.window() && !c.pacingBlocked)
}

// closedReporter is a session that tells whether it ended without a
// channel: asking its Done would make it keep one for its whole life.
type closedReporter interface{ Closed() bool }

// sessionEnded reports whether the session under a Conn has ended.
func sessionEnded(s security.Session) bool {
	if cr, ok := s.(closedReporter); ok {
		return cr.Closed()
	}
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}

// sessionEndedErr is the Conn's error when its secure session ended under
// it: the session's own cause when it tells one (a failed early handshake
// wraps transport.ErrWrongPeer), so callers can branch on it.
func (c *conn) sessionEndedErr() *transport.ConnError {
	e := &transport.ConnError{Code: transport.CodeConnClosing, Reason: "session closed"}
	if se, ok := c.sess.(security.SessionErr); ok {
		if err := se.Err(); err != nil {
			e.Err = err
			e.Reason = "session closed: " + err.Error()
		}
	}
	return e
}
