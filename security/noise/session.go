package noise

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/security"
	"github.com/ipv8/go-ipv8/transport"
)

// session is the state of one peer's secure channel: a struct driven by the
// port's read goroutine, the Transport's timer heap and its callers, with no
// goroutine of its own. Sending touches only atomics on the fast path.
type session struct {
	t            *Transport
	remoteID     peer.ID
	remotePub    *peer.PublicKey
	remoteStatic [32]byte     // the Noise static key the peer proved (rekeys are IK to it)
	localStatic  *localStatic // ours, as the peer knows it
	created      stamp
	done         chan struct{}
	closeErr     error // why it ended (nil: closed by its user or the peer); under mu
	closedFlag   atomic.Bool
	confirmedFlg atomic.Bool // the peer proved it has our keys (fast-path check)

	cur  atomic.Pointer[keypair]   // keys that seal what we send
	path atomic.Pointer[pathState] // where packets go

	// The fields are ordered (flags together) and the challenge is kept
	// apart so that an idle session fits a small allocation size class.
	mu          sync.Mutex
	closed      bool
	confirmed   bool
	xxInitiated bool   // we opened it with XX (see judgeLocked); under Transport.mu
	remoteEpoch uint64 // the peer's newest hello timestamp in a handshake of this session
	prev, next  *keypair
	prevSince   stamp
	oldPath     *pathState // the last validated path while a new one is validated
	pinUntil    stamp      // SetPath's move stands until then (setpath.go)
	chal        *challenge // nil when none is outstanding (most of a session's life)
	pending     [][]byte   // payloads waiting for usable keys or a validated path
	rekeying    *handshake
	rekeyRetry  stamp
	timer       timerItem // in the session: one allocation fewer a session

	recvMu   sync.Mutex
	recvFn   func([]byte)
	buffered [][]byte
}

// challenge is an outstanding PathChallenge: it confirms new keys to the
// side that made them, and validates a new address after roaming.
type challenge struct {
	data     [8]byte
	kp       *keypair   // sealed under it
	ps       *pathState // the path being validated (nil: keys only)
	confirm  []byte     // XX message 3, re-sent with it until answered
	next     time.Time
	deadline time.Time
	rto      time.Duration
	deferred bool // not sent yet: the timer sends it first at next
}

var _ security.Session = (*session)(nil)

// newSession makes a session (under t.mu). validated says whether the
// path is known to reach the peer.
func (t *Transport) newSession(id peer.ID, pub *peer.PublicKey, rs [32]byte, ls *localStatic, p Path, validated bool, remoteEpoch uint64) *session {
	s := &session{
		t:            t,
		remoteID:     id,
		remotePub:    pub,
		remoteStatic: rs,
		localStatic:  ls,
		created:      t.stampOf(t.now()),
		remoteEpoch:  remoteEpoch,
	}
	s.timer = timerItem{fn: s.onTimer, index: -1}
	ps := newPathState(p)
	ps.validated.Store(validated)
	s.path.Store(ps)
	return s
}

func (s *session) LocalPeer() peer.ID               { return s.t.id }
func (s *session) RemotePeer() peer.ID              { return s.remoteID }
func (s *session) RemotePublicKey() *peer.PublicKey { return s.remotePub }
func (s *session) RemoteAddr() netip.AddrPort       { return s.path.Load().p.Addr() }
func (s *session) isClosed() bool                   { return s.closedFlag.Load() }

// Done is closed when the session ends. The channel is made on the first
// call: most sessions are never waited on (the mux asks Closed), and an
// idle session should not carry one it does not need.
func (s *session) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		s.done = make(chan struct{}) // closed at the end of close
	}
	return s.done
}

// closedChan is the Done of a session that ended before anyone asked.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Closed reports whether the session has ended, without a channel.
func (s *session) Closed() bool { return s.closedFlag.Load() }

// MaxPayload is the largest plaintext Send takes.
func (s *session) MaxPayload() int {
	return s.t.cfg.MaxPacketSize - DataOverhead - s.path.Load().p.Overhead()
}

// Err tells why the session ended: the handshake's error for an early
// session whose handshake failed (wrapping security.ErrWrongPeer when the
// remote was not the peer dialled), nil while it runs or when it was
// closed by its user or by the peer.
func (s *session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeErr
}

// Path returns where the session's packets go now.
func (s *session) Path() Path { return s.path.Load().p }

// PathKind tells whether the session's packets go straight to the peer or
// through a relay (mux.PathKinder: Conn.Stats().Path reports it).
func (s *session) PathKind() transport.PathKind { return s.path.Load().p.Kind() }

// SetReceiver installs the function that gets each payload; payloads that
// arrived before (early data) are handed to it first, on this goroutine.
func (s *session) SetReceiver(f func(b []byte)) {
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	s.recvFn = f
	if f == nil {
		return
	}
	for _, b := range s.buffered {
		f(b)
	}
	s.buffered = nil
}

// deliver hands a payload to the receiver, or keeps a copy until one is set.
func (s *session) deliver(b []byte) {
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	if s.recvFn != nil {
		s.recvFn(b)
		return
	}
	if len(s.buffered) < maxBufferedBeforeReceiver {
		s.buffered = append(s.buffered, append([]byte(nil), b...))
	}
}

// sendEarly sends a dial's early data on a session that already exists.
func (s *session) sendEarly(early []byte) (security.Session, error) {
	if len(early) > 0 {
		if err := s.Send(early); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Close ends the session and tells the peer.
func (s *session) Close() error {
	s.close(true, security.ErrSessionClosed)
	return nil
}

func (s *session) close(notify bool, cause error) {
	t := s.t
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.closeErr = cause
	s.closedFlag.Store(true)
	kps := []*keypair{s.cur.Load(), s.prev, s.next}
	ps := s.path.Load()
	h := s.rekeying
	s.rekeying = nil
	s.chal = nil
	s.pending = nil
	s.mu.Unlock()
	if notify && kps[0] != nil {
		_ = s.sealAndWrite(kps[0], ps, KindClose, nil, false)
	}
	t.timers.cancel(&s.timer)
	t.mu.Lock()
	if t.sessions[s.remoteID] == s {
		delete(t.sessions, s.remoteID)
	}
	t.mu.Unlock()
	for _, kp := range kps {
		if kp != nil {
			kp.wipe()
			t.indexes.removeIf(kp.localIndex, kp)
		}
	}
	if h != nil {
		h.fail(security.ErrSessionClosed)
	}
	s.recvMu.Lock()
	s.buffered = nil
	s.recvMu.Unlock()
	s.mu.Lock()
	if s.done == nil {
		s.done = closedChan
	} else {
		close(s.done)
	}
	s.mu.Unlock()
	t.log.Debug("session closed", "remote", s.remoteID.ShortString(), "notify", notify)
}

// installResponder sets the first keys of a session we answered (before
// the session is published).
func (s *session) installResponder(kp *keypair, confirmed bool) {
	kp.sess = s
	s.cur.Store(kp)
	s.confirmed = confirmed
	s.confirmedFlg.Store(confirmed)
}

// installNext adds keys we answered for an existing session (a rekey, or a
// crossing handshake): they seal nothing until a packet under them arrives.
func (s *session) installNext(kp *keypair) {
	kp.sess = s
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.t.dropKeypair(kp)
		return
	}
	old := s.next
	s.next = kp
	s.rescheduleLocked(s.t.now())
	s.mu.Unlock()
	if old != nil {
		s.t.dropKeypair(old)
	}
}

// installInitiated makes keys we initiated current (message 2 confirmed
// them to us) and starts confirming them to the peer. The caller has set
// kp.sess and published kp's index, so that the peer's answer finds them.
func (s *session) installInitiated(kp *keypair, confirm []byte, remoteEpoch uint64) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.t.dropKeypair(kp)
		return
	}
	now := s.t.now()
	if remoteEpoch > s.remoteEpoch {
		s.remoteEpoch = remoteEpoch
	}
	var retired *keypair
	old := s.cur.Load()
	if old != nil && old != kp {
		retired = s.retireLocked(old, now)
	}
	s.cur.Store(kp)
	s.confirmed = true
	s.confirmedFlg.Store(true)
	ps := s.path.Load()
	var chalPath *pathState
	if s.chal != nil {
		chalPath = s.chal.ps
	}
	if chalPath == nil {
		ps.validated.Store(true) // message 2 came back from where we sent message 1
	}
	var send func()
	if old == nil && confirm == nil && chalPath == nil {
		s.deferChallengeLocked(kp, now) // a new IK session's first keys
		send = func() {}
	} else {
		send = s.startChallengeLocked(kp, chalPath, confirm, now)
	}
	pending := s.takePendingLocked()
	s.rescheduleLocked(now)
	s.mu.Unlock()
	if retired != nil {
		s.t.dropKeypair(retired)
	}
	send()
	s.flush(pending)
}

// retireLocked makes old the previous keypair (it still opens packets in
// flight for KeepPreviousKeys) and returns the one it replaces, to drop.
func (s *session) retireLocked(old *keypair, now time.Time) *keypair {
	dropped := s.prev
	s.prev = old
	s.prevSince = s.t.stampOf(now)
	return dropped
}

// dropKeypair wipes a keypair and frees its index.
func (t *Transport) dropKeypair(kp *keypair) {
	kp.wipe()
	t.indexes.removeIf(kp.localIndex, kp)
}

// inboundExpired ends what an unconfirmed inbound handshake left: a new
// session nobody confirmed closes; unconfirmed next keys are dropped.
func (s *session) inboundExpired(kp *keypair) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.next == kp {
		s.next = nil
		s.mu.Unlock()
		s.t.dropKeypair(kp)
		return
	}
	unconfirmed := s.cur.Load() == kp && !s.confirmed
	s.mu.Unlock()
	if unconfirmed {
		s.close(false, security.ErrHandshakeTimeout)
	}
}

// onAuthenticated updates the session for a packet that authenticated
// under kp, arriving from addr (or via a relay path): it confirms and
// rotates keys, credits an unvalidated path, and moves the session to a new
// path when the packet is the newest yet (roaming). It returns quickly for
// the usual packet.
func (s *session) onAuthenticated(kp *keypair, from netip.AddrPort, via Path, newest bool, n int) {
	ps := s.path.Load()
	if kp == s.cur.Load() && s.confirmedFlg.Load() && ps.matches(from, via) && ps.validated.Load() {
		return
	}
	t := s.t
	now := t.now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	var confirmIb *inbound
	var retired *keypair
	send := func() {}
	if kp == s.next {
		if cur := s.cur.Load(); cur != nil {
			retired = s.retireLocked(cur, now)
		}
		s.cur.Store(kp)
		s.next = nil
		confirmIb = kp.takeInbound()
		t.stats.rekeys.Add(1)
	}
	ps = s.path.Load()
	if !s.confirmed && kp == s.cur.Load() {
		s.confirmed = true
		s.confirmedFlg.Store(true)
		if ib := kp.takeInbound(); ib != nil {
			confirmIb = ib
		}
		if ps.matches(from, via) {
			// The initiator has the keys, so it received message 2 where we sent it.
			ps.validated.Store(true)
		}
	}
	if ps.matches(from, via) {
		if !ps.validated.Load() {
			ps.recvBytes.Add(uint64(n))
		}
	} else if newest && s.confirmed && !s.pinnedLocked(now) {
		var p Path = via
		if p == nil {
			p = &directPath{port: t.port, addr: from}
		}
		np := newPathState(p)
		np.recvBytes.Store(uint64(n))
		if ps.validated.Load() {
			s.oldPath = ps
		}
		s.path.Store(np)
		t.stats.roams.Add(1)
		t.log.Debug("session moved", "remote", s.remoteID.ShortString(), "from", ps.p.Addr(), "to", p.Addr())
		send = s.startChallengeLocked(s.cur.Load(), np, nil, now)
	}
	var pending [][]byte
	if s.path.Load().validated.Load() {
		pending = s.takePendingLocked()
	}
	s.rescheduleLocked(now)
	s.mu.Unlock()
	if retired != nil {
		t.dropKeypair(retired)
	}
	if confirmIb != nil {
		t.confirmInbound(confirmIb)
	}
	send()
	s.flush(pending)
}

// startChallengeLocked sends a PathChallenge under kp (to ps, or the
// current path) and arms its retransmission. It returns the send to run
// once s.mu is released.
func (s *session) startChallengeLocked(kp *keypair, ps *pathState, confirm []byte, now time.Time) func() {
	if kp == nil {
		return func() {}
	}
	c := challenge{kp: kp, ps: ps, confirm: confirm, rto: s.t.cfg.RetransmitInitial}
	if _, err := io.ReadFull(s.t.rng, c.data[:]); err != nil {
		return func() {}
	}
	c.next = now.Add(c.rto)
	c.deadline = now.Add(s.t.cfg.HandshakeTimeout)
	s.chal = &c
	return s.challengeSender(c)
}

// confirmDelay is how long the PathChallenge that confirms a new IK
// session's first keys waits (deferChallengeLocked).
const confirmDelay = 5 * time.Millisecond

// deferChallengeLocked arms the PathChallenge that confirms a new IK
// session's first keys to the responder without sending it: the timer
// sends it after confirmDelay. Any packet under the keys confirms them,
// and a new session's first data packet follows message 2 within
// microseconds (a Conn's opening packet), so the responder reads that
// first and does not answer a challenge meanwhile; a session nothing is
// sent on is confirmed a few milliseconds later.
func (s *session) deferChallengeLocked(kp *keypair, now time.Time) {
	s.startChallengeLocked(kp, nil, nil, now) // its send is dropped
	if c := s.chal; c != nil && c.kp == kp {
		c.next, c.deferred = now.Add(confirmDelay), true
	}
}

func (s *session) challengeSender(c challenge) func() {
	return func() {
		ps := c.ps
		if ps == nil {
			ps = s.path.Load()
		}
		if c.confirm != nil {
			_ = s.t.write(ps.p, c.confirm)
		}
		_ = s.sealAndWrite(c.kp, ps, KindPathChallenge, c.data[:], true)
	}
}

// answerChallenge echoes a PathChallenge on the path it came over.
func (s *session) answerChallenge(kp *keypair, data []byte, from netip.AddrPort, via Path) {
	ps := s.path.Load()
	if !ps.matches(from, via) {
		var p Path = via
		if p == nil {
			p = &directPath{port: s.t.port, addr: from}
		}
		ps = newPathState(p)
		ps.recvBytes.Store(uint64(DataOverhead + len(data)))
	}
	_ = s.sealAndWrite(kp, ps, KindPathResponse, data, true)
}

// onPathResponse ends the challenge it answers: the keys are confirmed and
// the path it was sent on is validated.
func (s *session) onPathResponse(data []byte) {
	s.mu.Lock()
	if s.closed || s.chal == nil || !bytes.Equal(data, s.chal.data[:]) {
		s.mu.Unlock()
		return
	}
	if ps := s.chal.ps; ps != nil {
		ps.validated.Store(true)
		if s.path.Load() == ps {
			s.oldPath = nil
		}
	}
	s.chal = nil
	var pending [][]byte
	if s.path.Load().validated.Load() {
		pending = s.takePendingLocked()
	}
	s.rescheduleLocked(s.t.now())
	s.mu.Unlock()
	s.flush(pending)
}

func (s *session) takePendingLocked() [][]byte {
	p := s.pending
	s.pending = nil
	return p
}

// flush sends payloads that waited; what still cannot go waits again.
func (s *session) flush(pending [][]byte) {
	for _, b := range pending {
		_ = s.sendKind(KindData, b)
	}
}

// rekeyEnded is told when the session's rekey handshake ends.
func (s *session) rekeyEnded(h *handshake, err error) {
	s.mu.Lock()
	if s.rekeying != h {
		s.mu.Unlock()
		return
	}
	s.rekeying = nil
	dead := false
	if err != nil && !errors.Is(err, errAbandoned) {
		s.rekeyRetry = s.t.stampOf(s.t.now().Add(s.t.cfg.RetransmitMax))
		kp := s.cur.Load()
		dead = kp == nil || kp.isWiped()
	}
	s.mu.Unlock()
	if dead {
		// The keys expired and the peer did not answer a new handshake
		// within HandshakeTimeout: it is gone.
		s.close(false, err)
	}
}

// startRekeyLocked starts a rekey handshake unless one runs; the caller
// calls start on the result once s.mu is released.
func (s *session) startRekeyLocked(now time.Time) *handshake {
	if s.rekeying != nil || s.closed || s.t.before(now, s.rekeyRetry) {
		return nil
	}
	h, err := s.t.newInitiator(PatternIK, s.remoteID, s.remoteStatic[:], s.localStatic, s.path.Load().p, s, nil, now.Add(s.t.cfg.HandshakeTimeout))
	if err != nil {
		return nil
	}
	s.rekeying = h
	return h
}

func startHandshake(h *handshake) {
	if h == nil {
		return
	}
	if err := h.start(); err != nil {
		h.fail(err)
	}
}
