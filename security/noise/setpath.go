package noise

import (
	"errors"
	"net/netip"
	"time"

	"github.com/ipv8/go-ipv8/security"
)

// PathPinTime is how long after SetPath packets that arrive over another
// path do not move the session (they are still accepted): the peer keeps
// sending over the old path until our packets over the new one reach it,
// and those late packets must not undo the move.
const PathPinTime = 2 * time.Second

// PathSetter is implemented by this package's sessions (the
// security.Session values Dial, DialPath and Accept return). NAT traversal
// (nat/pathsel) uses it to move a session between a relay circuit and a
// punched direct path without a new handshake: the local side moves with
// SetPath, and the peer follows when our packets arrive over the new path
// (they authenticate, so the peer roams).
type PathSetter interface {
	Path() Path
	SetPath(p Path) error
}

var _ PathSetter = (*session)(nil)

// SetPath makes the session send along p from now on. p is taken as
// validated: call it only for a path the peer was heard on (a hole punch
// answered there, or the relay circuit the session already used), since
// the 3× amplification limit does not apply to it. For PathPinTime after,
// packets over other paths do not move the session.
func (s *session) SetPath(p Path) error {
	if p == nil {
		return errors.New("noise: SetPath(nil)")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return security.ErrSessionClosed
	}
	now := s.t.now()
	s.pinUntil = s.t.stampOf(now.Add(PathPinTime))
	cur := s.path.Load()
	same := cur.p == p
	if d, ok := p.(*directPath); ok && cur.direct != nil {
		same = cur.direct.addr == d.addr
	}
	if same {
		cur.validated.Store(true)
	} else {
		np := newPathState(p)
		np.validated.Store(true)
		s.oldPath = nil // nothing to fall back to: the caller chose p
		s.path.Store(np)
		s.t.log.Debug("session path set", "remote", s.remoteID.ShortString(), "from", cur.p.Addr(), "to", p.Addr(), "kind", p.Kind())
	}
	pending := s.takePendingLocked()
	s.rescheduleLocked(now)
	s.mu.Unlock()
	s.flush(pending)
	return nil
}

// pinnedLocked reports whether SetPath pinned the session's path (s.mu held).
func (s *session) pinnedLocked(now time.Time) bool { return s.t.before(now, s.pinUntil) }

// DirectPath returns the path straight to addr from the Transport's port:
// what a session uses after it roamed to addr, for SetPath.
func (t *Transport) DirectPath(addr netip.AddrPort) Path {
	return &directPath{port: t.port, addr: addr}
}
