package noise

import (
	"net/netip"
	"time"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
)

// What happens to an incoming packet. The port calls the handle* functions
// on its read goroutine; a relay hands the packets it unwraps to HandleVia.
// Nothing here blocks, and nothing is sent before a packet authenticated
// except, statelessly and smaller than what arrived, a cookie reply or a
// refusal, and message 2 within three times the initiation's size.

func (t *Transport) handleInitiation(pkt []byte, from netip.AddrPort) { t.onInitiation(pkt, from, nil) }
func (t *Transport) handleResponse(pkt []byte, from netip.AddrPort)   { t.onResponse(pkt, from, nil) }
func (t *Transport) handleCookie(pkt []byte, from netip.AddrPort)     { t.onCookie(pkt) }
func (t *Transport) handleData(pkt []byte, from netip.AddrPort)       { t.onData(pkt, from, nil) }

// HandleVia takes a Noise packet that arrived over a path other than the
// port's direct one (a relay unwrapped it). A session that authenticates
// it moves to that path, as it would to a new address.
func (t *Transport) HandleVia(pkt []byte, via Path) {
	if len(pkt) == 0 || via == nil {
		return
	}
	from := via.Addr()
	switch pkt[0] {
	case transport.TypeNoiseInitiation:
		t.onInitiation(pkt, from, via)
	case transport.TypeNoiseResponse:
		t.onResponse(pkt, from, via)
	case transport.TypeNoiseCookie:
		t.onCookie(pkt)
	case transport.TypeNoiseData:
		t.onData(pkt, from, via)
	}
}

// newInbound records a responder's half-open handshake: an index for it,
// the message-2 packet (kept for retransmission), and the keypair its
// ciphers make (msg1, when not nil, opens 0-RTT packets). On failure it
// wipes the ciphers and reports false.
func (t *Transport) newInbound(eph [32]byte, pattern Pattern, now time.Time, path Path, remoteIndex uint32, recvBytes int, msg2 []byte, c1, c2, msg1 *aeadCipher) (*inbound, *keypair, []byte, bool) {
	ib := &inbound{key: eph, pattern: pattern, created: now, path: path}
	ib.timer = newTimerItem(func() { t.dropInbound(ib) })
	idx, err := t.indexes.add(indexEntry{in: ib})
	if err != nil {
		c1.wipe()
		c2.wipe()
		msg1.wipe()
		return nil, nil, nil, false
	}
	ib.localIndex = idx
	r := Response{Step: 2, SenderIndex: idx, ReceiverIndex: remoteIndex, Message: msg2}
	pkt2 := r.Append(make([]byte, 0, responseHeaderLen+len(msg2)))
	kp := t.keypairOf(idx, remoteIndex, false, c1, c2, msg1)
	kp.inbound = ib
	ib.response, ib.recvBytes, ib.sentBytes, ib.kp = pkt2, recvBytes, len(pkt2), kp
	return ib, kp, pkt2, true
}

// freshEarly is the initiator's 0-RTT data, or nil when its hello's
// timestamp is further from now than EarlyDataMaxAge (counted as dropped).
func (t *Transport) freshEarly(hello *Hello, now time.Time) []byte {
	if len(hello.Early) == 0 {
		return nil
	}
	skew := now.Sub(time.Unix(0, int64(hello.Timestamp)))
	if skew < 0 {
		skew = -skew
	}
	if skew > t.cfg.EarlyDataMaxAge {
		t.stats.droppedEarlyData.Add(1)
		return nil
	}
	return hello.Early
}

// replyPath is where to answer a packet from addr (or via a relay).
func (t *Transport) replyPath(from netip.AddrPort, via Path) Path {
	if via != nil {
		return via
	}
	return &directPath{port: t.port, addr: from}
}

// onInitiation: mac1, then the retransmission cache, then the load check
// (cookie reply), then the half-open limit, and only then Diffie-Hellman.
func (t *Transport) onInitiation(pkt []byte, from netip.AddrPort, via Path) {
	in, err := ParseInitiation(pkt)
	if err != nil {
		t.stats.droppedMalformed.Add(1)
		return
	}
	now := t.now()
	var static *localStatic
	sealKey := &t.xxSealKey
	if in.Pattern == PatternIK {
		if static = t.staticFor(pkt); static == nil {
			t.stats.droppedMAC1.Add(1)
			t.refuse(&in, pkt, from, via, now)
			return
		}
		sealKey = &static.sealKey
	} else {
		if !checkMAC1(pkt, &t.xxMAC1Key) {
			t.stats.droppedMAC1.Add(1)
			return
		}
		static = t.primary
	}
	var eph [32]byte
	copy(eph[:], in.ephemeralOf())
	if !t.mayAnswer(&in, pkt, eph, sealKey, from, via, now) {
		return
	}
	if in.Pattern == PatternIK {
		t.respondIK(&in, pkt, static, eph, from, via, now, false)
	} else {
		t.respondXX(&in, pkt, eph, from, via, now)
	}
}

// mayAnswer runs the checks an initiation (any pattern, or a resumption)
// passes before it costs us any Noise work or state: a retransmission is
// answered with the message 2 already made; under load an initiation
// without a valid cookie gets a cookie reply (within 3× its bytes); past
// MaxHalfOpen it is dropped.
func (t *Transport) mayAnswer(in *Initiation, pkt []byte, eph [32]byte, sealKey *[32]byte, from netip.AddrPort, via Path, now time.Time) bool {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return false
	}
	if ib := t.inbound[eph]; ib != nil {
		t.mu.Unlock()
		t.resendResponse(ib, len(pkt), from, via)
		return false
	}
	halfOpen := t.halfOpenLocked()
	t.mu.Unlock()
	if t.cookies.note(now, halfOpen, t.cfg.MaxHalfOpen) && !t.cookies.validMAC2(now, pkt, from) {
		reply, err := t.cookies.reply(now, in, from, sealKey)
		if err == nil && len(reply) <= amplificationFactor*len(pkt) {
			if t.write(t.replyPath(from, via), reply) == nil {
				t.stats.cookieRepliesSent.Add(1)
			}
		}
		return false
	}
	if halfOpen >= t.cfg.MaxHalfOpen {
		t.stats.droppedLoad.Add(1)
		return false
	}
	return true
}

// refuse tells an IK initiator that none of our static keys is the one it
// dialled, unless we are under load (then junk costs us nothing at all).
func (t *Transport) refuse(in *Initiation, pkt []byte, from netip.AddrPort, via Path, now time.Time) {
	t.mu.Lock()
	halfOpen := t.halfOpenLocked()
	t.mu.Unlock()
	if t.cookies.underLoad(now, halfOpen, t.cfg.MaxHalfOpen) {
		return
	}
	r := Refusal{ReceiverIndex: in.SenderIndex, MAC1: in.MAC1}
	if t.write(t.replyPath(from, via), r.Append(make([]byte, 0, refusalLen))) == nil {
		t.stats.refusalsSent.Add(1)
	}
}

// resendResponse answers a retransmitted initiation with the message 2 it
// already got, within three times the bytes the address sent.
func (t *Transport) resendResponse(ib *inbound, n int, from netip.AddrPort, via Path) {
	ib.mu.Lock()
	if ib.done || ib.response == nil {
		ib.mu.Unlock()
		return
	}
	ib.recvBytes += n
	resp := ib.response
	if ib.sentBytes+len(resp) > amplificationFactor*ib.recvBytes {
		ib.mu.Unlock()
		t.stats.droppedAmplification.Add(1)
		return
	}
	ib.sentBytes += len(resp)
	ib.mu.Unlock()
	if t.write(t.replyPath(from, via), resp) == nil {
		t.stats.retransmissions.Add(1)
	}
	if s := ib.sess; s != nil {
		// The session's path is the initiation's address: credit it too.
		if ps := s.path.Load(); ps.matches(from, via) && !ps.validated.Load() {
			ps.recvBytes.Add(uint64(n))
			ps.sentBytes.Add(uint64(len(resp)))
		}
	}
}

// verdict is what a new-session handshake from a peer becomes.
type verdict struct {
	drop     bool
	merge    *session   // a live session it joins (crossing handshakes)
	replace  *session   // a session the peer abandoned (restart, or closed it)
	takeover *handshake // our own dial to the peer that lost the simultaneous open
	// retry: our dial to the peer lost the simultaneous open but sent a
	// hello newer than our answer; answer again, with a newer timestamp.
	retry bool
}

// crossWindow is how young a session must be for a new-session handshake
// from its peer to count as crossing with it (both sides opened at once)
// rather than as the peer starting over.
func (t *Transport) crossWindow() time.Duration { return 2 * t.cfg.HandshakeTimeout }

// judgeLocked decides what an authenticated new-session handshake with
// timestamp ts from id becomes (docs/protocol/noise.md, "One session per
// peer"). answerTS is the timestamp of the hello we answered it with.
func (t *Transport) judgeLocked(id peer.ID, ts, answerTS uint64, now time.Time) verdict {
	var v verdict
	if s := t.sessions[id]; s != nil && !s.isClosed() {
		s.mu.Lock()
		epoch := s.remoteEpoch
		s.mu.Unlock()
		switch {
		case ts <= epoch:
			v.drop = true // sent before the peer took part in this session
		case s.xxInitiated && now.Sub(t.timeOf(s.created)) < t.crossWindow():
			// We opened s with XX, so the peer answered without knowing
			// who we were, and may have opened its own session to us at
			// the same time: both sides merge the two.
			v.merge = s
		default:
			// The peer took part in s and still opens a new session: it
			// restarted or dropped s. Start over.
			v.replace = s
		}
		if v.drop || v.merge != nil {
			return v
		}
	}
	if d := t.dials[id]; d != nil {
		if idLess(t.id, id) {
			v.drop = true // our initiation wins; the peer answers it
			v.replace = nil
			return v
		}
		if !d.loseLocked(answerTS) {
			// Our dial's initiation is newer than our answer (it started
			// while we made the answer): the peer would take it for a new
			// session once it has the answer.
			v.drop, v.retry, v.replace = true, true, nil
			return v
		}
		delete(t.dials, id)
		v.takeover = d
	}
	if v.takeover == nil && len(t.acceptQ) >= cap(t.acceptQ) {
		v.drop = true
		v.replace = nil
	}
	return v
}

// respondIK answers message 1 of IK: it authenticates the initiator, makes
// the keys, and answers with message 2 — made twice at most (retried):
// see verdict.retry.
func (t *Transport) respondIK(in *Initiation, pkt []byte, static *localStatic, eph [32]byte, from netip.AddrPort, via Path, now time.Time, retried bool) {
	st, _, rs, payload, msg1, err := ikRead1(&static.kp, t.staticDH(static), in.Message)
	if err != nil {
		t.stats.droppedHandshake.Add(1)
		return
	}
	// wipe forgets the handshake's keys when it goes no further.
	wipe := func() {
		st.wipe()
		msg1.wipe()
	}
	hello, err := ParseHello(payload)
	if err != nil {
		wipe()
		t.stats.droppedMalformed.Add(1)
		return
	}
	var pub *peer.PublicKey
	var id peer.ID
	if hello.Rekey {
		if len(hello.Ed25519) != 32 {
			wipe()
			t.stats.droppedMalformed.Add(1)
			return
		}
		id = peer.IDFromEd25519(hello.Ed25519)
		t.mu.Lock()
		s := t.sessions[id]
		t.mu.Unlock()
		if s == nil || s.isClosed() || s.remoteStatic != rs || s.localStatic != static {
			wipe()
			t.stats.droppedStale.Add(1)
			return
		}
		pub = s.remotePub
	} else {
		pub, err = verifyIdentity(hello.Ed25519, rs[:], hello.X25519, hello.Signature)
		if err != nil {
			wipe()
			t.stats.droppedHandshake.Add(1)
			return
		}
		id = peer.IDFromPublicKey(pub)
	}
	if id == t.id {
		wipe()
		return
	}
	// A replayed initiation is refused here, before message 2's two
	// Diffie-Hellman operations.
	if last, ok := t.lastInit.Peek(id); ok && hello.Timestamp <= last {
		wipe()
		t.stats.droppedStale.Add(1)
		return
	}
	mine := Hello{Timestamp: t.timestamp()}
	if static == t.secondary {
		// We answer at the key derived from our ID; tell the initiator our
		// identity's own X25519 key, signed.
		mine.X25519 = t.primary.kp.public[:]
		mine.Signature = t.sig
	}
	e, err := t.ephs.take(t.rng)
	if err != nil {
		wipe()
		return
	}
	msg2, c1, c2, err := ikWrite2(&st, e, &eph, &rs, mine.Append(nil))
	e.wipe()
	if err != nil {
		msg1.wipe()
		t.stats.droppedHandshake.Add(1)
		return
	}
	// msg1 opened message 1's payload: 0-RTT packets that follow the
	// initiation are opened with a key derived from it (early.go).
	ib, kp, pkt2, ok := t.newInbound(eph, PatternIK, now, t.replyPath(from, via), in.SenderIndex, len(pkt), msg2, c1, c2, msg1)
	if !ok {
		return
	}
	a := admission{
		id: id, pub: pub, rs: rs, static: static, ts: hello.Timestamp, answerTS: mine.Timestamp,
		rekey: hello.Rekey, eph: eph, ib: ib, kp: kp, pkt: pkt, pkt2: pkt2,
		early: t.freshEarly(&hello, now), now: now,
	}
	switch t.admit(&a) {
	case admitRetry:
		if !retried {
			t.respondIK(in, pkt, static, eph, from, via, t.now(), true)
			return
		}
		t.stats.droppedStale.Add(1)
	case admitted:
		// The next answer's key, made while the initiator reads this one.
		t.ephs.refill(t.rng)
	}
}

// An admission is a responder's answered handshake (IK or resumption) on
// its way to becoming a session: what the verdict and the session need.
type admission struct {
	id       peer.ID
	pub      *peer.PublicKey
	rs       [32]byte     // the initiator's static key
	static   *localStatic // ours, the one it reached
	ts       uint64       // the initiator's hello timestamp
	answerTS uint64       // ours, in message 2
	rekey    bool
	eph      [32]byte // the initiator's ephemeral key: the inbound's key
	ib       *inbound
	kp       *keypair
	pkt      []byte // message 1
	pkt2     []byte // message 2, sent here
	early    []byte // 0-RTT payload of message 1 still fresh enough
	now      time.Time
	// spent runs once the handshake is admitted, before message 2 leaves
	// (a resumption spends its ticket).
	spent func()
}

// admitResult says how admit ended.
type admitResult int

const (
	admitted   admitResult = iota
	admitDrop              // refused: counted, its state undone
	admitRetry             // refused for now: answer again with a newer timestamp (verdict.retry), its state undone
)

// admit judges an answered handshake against the sessions we hold (a new
// session, a merge with a crossing one, a rekey of a live one), installs
// its keys, sends message 2 and hands a new session to Accept. The IK and
// resumption responders share it so that both follow the same rules.
func (t *Transport) admit(a *admission) admitResult {
	idx := a.ib.localIndex
	if t.testHookVerdict != nil {
		t.testHookVerdict()
	}
	var v verdict
	var s *session
	var abandon *handshake
	t.mu.Lock()
	reject := t.closed || t.inbound[a.eph] != nil || len(t.inbound) >= t.cfg.MaxHalfOpen
	if last, ok := t.lastInit.Peek(a.id); ok && a.ts <= last {
		reject = true
	}
	if !reject && a.rekey {
		s = t.sessions[a.id]
		if s == nil || s.isClosed() {
			reject = true
		} else {
			s.mu.Lock()
			if h := s.rekeying; h != nil {
				// Both sides rekey at once: the lower ID's handshake wins.
				if idLess(t.id, a.id) {
					reject = true
				} else {
					h.abandoned.Store(true)
					abandon = h
				}
			}
			s.mu.Unlock()
		}
	} else if !reject {
		v = t.judgeLocked(a.id, a.ts, a.answerTS, a.now)
		reject = v.drop
	}
	if reject {
		t.mu.Unlock()
		t.early.remove(a.kp)
		t.dropKeypair(a.kp)
		t.indexes.removeIf(idx, a.ib)
		if v.retry {
			return admitRetry
		}
		t.stats.droppedStale.Add(1)
		return admitDrop
	}
	t.lastInit.Add(a.id, a.ts)
	t.inbound[a.eph] = a.ib
	switch {
	case a.rekey:
	case v.merge != nil:
		s = v.merge
		t.stats.simultaneousOpens.Add(1)
	default:
		if v.replace != nil {
			delete(t.sessions, a.id)
		}
		s = t.newSession(a.id, a.pub, a.rs, a.static, a.ib.path, false, a.ts)
		ps := s.path.Load()
		ps.recvBytes.Store(uint64(len(a.pkt)))
		ps.sentBytes.Store(uint64(len(a.pkt2)))
		s.installResponder(a.kp, false)
		if len(a.early) > 0 {
			s.deliver(a.early)
		}
		t.sessions[a.id] = s
	}
	a.ib.sess = s
	if a.rekey || v.merge != nil {
		s.installNext(a.kp) // lock order: Transport.mu, then session.mu
	}
	t.mu.Unlock()
	if a.spent != nil {
		a.spent()
	}

	t.indexes.replace(idx, indexEntry{kp: a.kp})
	t.timers.schedule(a.ib.timer, a.now.Add(t.cfg.HandshakeTimeout))
	t.stats.handshakesCompleted.Add(1)
	if len(a.pkt2) <= amplificationFactor*len(a.pkt) {
		_ = t.write(a.ib.path, a.pkt2)
	}
	if abandon != nil {
		abandon.fail(errAbandoned)
	}
	if v.merge != nil && len(a.early) > 0 {
		s.deliver(a.early)
	}
	t.finishAccept(s, v, a.rekey)
	return admitted
}

// finishAccept completes a verdict once Transport.mu is released.
func (t *Transport) finishAccept(s *session, v verdict, rekey bool) {
	if v.replace != nil {
		v.replace.close(false, nil)
	}
	switch {
	case rekey || v.merge != nil:
	case v.takeover != nil:
		v.takeover.takeOver(s)
	default:
		select {
		case t.acceptQ <- s:
		default:
			s.close(false, nil)
		}
	}
	t.log.Debug("session answered", "remote", s.remoteID.ShortString(), "rekey", rekey, "merged", v.merge != nil)
}

// respondXX answers XX message 1 with message 2 (our identity) and keeps
// the handshake until message 3.
func (t *Transport) respondXX(in *Initiation, pkt []byte, eph [32]byte, from netip.AddrPort, via Path, now time.Time) {
	e, err := t.ephs.take(t.rng)
	if err != nil {
		return
	}
	hs, su, err := t.newNoise(PatternXX, false, t.primary, nil, e)
	if err != nil {
		e.wipe()
		return
	}
	if _, _, _, err := hs.ReadMessage(nil, in.Message); err != nil {
		su.wipe()
		t.stats.droppedHandshake.Add(1)
		return
	}
	mine := Hello{Timestamp: t.timestamp(), Ed25519: t.edPub, Signature: t.sig}
	hello2 := mine.Append(nil)
	msg2, _, _, err := hs.WriteMessage(nil, hello2)
	if err != nil {
		su.wipe()
		return
	}
	path := t.replyPath(from, via)
	ib := &inbound{
		key: eph, pattern: PatternXX, created: now, path: path,
		hs: hs, su: su, remoteIndex: in.SenderIndex,
		msg1: append([]byte(nil), in.Message...), eph: su.ephemeral, hello2: hello2,
	}
	ib.timer = newTimerItem(func() { t.dropInbound(ib) })
	idx, err := t.indexes.add(indexEntry{in: ib})
	if err != nil {
		su.wipe()
		return
	}
	ib.localIndex = idx
	r := Response{Step: 2, SenderIndex: idx, ReceiverIndex: in.SenderIndex, Message: msg2}
	pkt2 := r.Append(make([]byte, 0, responseHeaderLen+len(msg2)))
	ib.response, ib.recvBytes, ib.sentBytes = pkt2, len(pkt), len(pkt2)
	t.mu.Lock()
	if t.closed || t.inbound[eph] != nil || len(t.inbound) >= t.cfg.MaxHalfOpen {
		t.mu.Unlock()
		t.indexes.removeIf(idx, ib)
		su.wipe()
		return
	}
	t.inbound[eph] = ib
	t.mu.Unlock()
	t.timers.schedule(ib.timer, now.Add(t.cfg.HandshakeTimeout))
	if len(pkt2) <= amplificationFactor*len(pkt) {
		_ = t.write(ib.path, pkt2)
	} else {
		t.stats.droppedAmplification.Add(1)
	}
	t.ephs.refill(t.rng)
}

// rebuildLocked restores an XX responder's state after a forged message 3
// corrupted it, by replaying messages 1 and 2 with the same ephemeral key.
func (ib *inbound) rebuildLocked(t *Transport) error {
	hs, su, err := t.newNoise(PatternXX, false, t.primary, nil, ib.eph)
	if err != nil {
		return err
	}
	if _, _, _, err := hs.ReadMessage(nil, ib.msg1); err != nil {
		return err
	}
	if _, _, _, err := hs.WriteMessage(nil, ib.hello2); err != nil {
		return err
	}
	if old := ib.su; old != nil {
		old.ephemeral = nil
		old.wipe()
	}
	ib.hs, ib.su, ib.broken = hs, su, false
	return nil
}

// onResponse routes message 2 to our handshake and XX message 3 to the
// responder's half-open state.
func (t *Transport) onResponse(pkt []byte, from netip.AddrPort, via Path) {
	m, err := ParseResponse(pkt)
	if err != nil {
		t.stats.droppedMalformed.Add(1)
		return
	}
	e, ok := t.indexes.get(m.ReceiverIndex)
	switch {
	case !ok:
		t.stats.droppedUnknownIndex.Add(1)
	case m.Step == 2 && e.hs != nil:
		e.hs.onResponse(&m, from, via)
	case m.Step == 3 && e.in != nil:
		t.onMessage3(e.in, &m, from, via)
	case m.Step == 3 && e.kp != nil:
		// A retransmitted message 3 whose session exists: the initiator's
		// PathChallenge, sent with it, is answered instead.
	default:
		t.stats.droppedUnknownIndex.Add(1)
	}
}

// onMessage3 completes an XX handshake we answered.
func (t *Transport) onMessage3(ib *inbound, m *Response, from netip.AddrPort, via Path) {
	now := t.now()
	ib.mu.Lock()
	if ib.done || ib.hs == nil || ib.pattern != PatternXX || m.SenderIndex != ib.remoteIndex {
		ib.mu.Unlock()
		return
	}
	if ib.broken {
		if err := ib.rebuildLocked(t); err != nil {
			ib.mu.Unlock()
			return
		}
	}
	payload, cs1, cs2, err := ib.hs.ReadMessage(nil, m.Message)
	if err != nil {
		ib.broken = true
		ib.mu.Unlock()
		t.stats.droppedHandshake.Add(1)
		return
	}
	hello, err := ParseHello(payload)
	var pub *peer.PublicKey
	var rs [32]byte
	copy(rs[:], ib.hs.PeerStatic())
	if err == nil {
		pub, err = verifyIdentity(hello.Ed25519, rs[:], hello.X25519, hello.Signature)
	}
	if err != nil || hello.Rekey {
		ib.mu.Unlock()
		t.stats.droppedHandshake.Add(1)
		t.dropInbound(ib)
		return
	}
	id := peer.IDFromPublicKey(pub)
	if id == t.id {
		ib.mu.Unlock()
		t.dropInbound(ib)
		return
	}
	kp := t.newKeypair(ib.localIndex, ib.remoteIndex, false, cs1, cs2, ib.su)
	ib.su, ib.hs, ib.done = nil, nil, true
	ib.mu.Unlock()

	path := t.replyPath(from, via)
	t.mu.Lock()
	if t.inbound[ib.key] == ib {
		delete(t.inbound, ib.key)
	}
	var v verdict
	reject := t.closed
	if !reject {
		// Our message 2 went out long ago, so its hello may be older than
		// a dial of ours to the peer that started since: the peer opened
		// with XX and merges that dial's initiation into this session
		// (rule 3), so this answer stands whatever the dial sent.
		v = t.judgeLocked(id, hello.Timestamp, tsLost, now)
		reject = v.drop
	}
	if reject {
		t.mu.Unlock()
		t.timers.cancel(ib.timer)
		t.dropKeypair(kp)
		t.indexes.removeIf(ib.localIndex, ib)
		t.stats.droppedStale.Add(1)
		return
	}
	if last, ok := t.lastInit.Peek(id); !ok || hello.Timestamp > last {
		t.lastInit.Add(id, hello.Timestamp)
	}
	var s *session
	if v.merge != nil {
		s = v.merge
		t.stats.simultaneousOpens.Add(1)
		s.installNext(kp)
	} else {
		if v.replace != nil {
			delete(t.sessions, id)
		}
		// Message 3 proves the initiator received message 2 where we sent it.
		s = t.newSession(id, pub, rs, t.primary, path, true, hello.Timestamp)
		s.installResponder(kp, true)
		t.sessions[id] = s
	}
	if len(hello.Early) > 0 {
		s.deliver(hello.Early)
	}
	t.mu.Unlock()
	t.timers.cancel(ib.timer)
	t.indexes.replace(ib.localIndex, indexEntry{kp: kp})
	t.stats.handshakesCompleted.Add(1)
	if v.merge == nil {
		s.mu.Lock()
		s.rescheduleLocked(now)
		s.mu.Unlock()
	}
	t.finishAccept(s, v, false)
}

// onCookie routes a cookie reply or a refusal to our handshake.
func (t *Transport) onCookie(pkt []byte) {
	if len(pkt) < 2 {
		t.stats.droppedMalformed.Add(1)
		return
	}
	switch pkt[1] {
	case replyCookie:
		m, err := ParseCookieReply(pkt)
		if err != nil {
			t.stats.droppedMalformed.Add(1)
			return
		}
		if e, ok := t.indexes.get(m.ReceiverIndex); ok && e.hs != nil {
			e.hs.onCookie(&m)
			return
		}
	case replyRefusal:
		m, err := ParseRefusal(pkt)
		if err != nil {
			t.stats.droppedMalformed.Add(1)
			return
		}
		if e, ok := t.indexes.get(m.ReceiverIndex); ok && e.hs != nil {
			e.hs.onRefusal(&m)
			return
		}
	default:
		t.stats.droppedMalformed.Add(1)
		return
	}
	t.stats.droppedUnknownIndex.Add(1)
}

// onData opens a transport data packet: header, index, replay window
// (checked before decrypting, recorded after), AEAD, then the session.
func (t *Transport) onData(pkt []byte, from netip.AddrPort, via Path) {
	h, n, err := ParseDataHeader(pkt)
	if err != nil {
		t.stats.droppedMalformed.Add(1)
		return
	}
	e, ok := t.indexes.get(h.ReceiverIndex)
	if !ok || e.kp == nil {
		t.stats.droppedUnknownIndex.Add(1)
		return
	}
	kp := e.kp
	if h.Counter >= t.cfg.RejectAfterMessages {
		t.stats.droppedExpired.Add(1)
		return
	}
	if !kp.replay.check(h.Counter) {
		t.stats.droppedReplay.Add(1)
		return
	}
	aes := t.aesOK()
	buf := t.getBuf()
	defer t.putBuf(buf)
	pt, err := kp.open(buf.b[:0], &buf.nonce, &h, pkt[:n], pkt[n:], aes)
	if err != nil {
		if err == errWiped {
			t.stats.droppedExpired.Add(1)
		} else {
			t.stats.droppedAuth.Add(1)
		}
		return
	}
	ok, newest := kp.replay.update(h.Counter)
	if !ok {
		t.stats.droppedReplay.Add(1)
		return
	}
	if aes && h.Flags&FlagOpensAESGCM != 0 && !kp.peerAES.Load() {
		kp.peerAES.Store(true)
	}
	t.stats.packetsReceived.Add(1)
	t.stats.bytesReceived.Add(uint64(len(pkt)))
	s := kp.sess
	if s == nil {
		return
	}
	s.onAuthenticated(kp, from, via, newest, len(pkt))
	switch h.Kind {
	case KindData:
		if len(pt) > 0 {
			s.deliver(pt)
		}
	case KindClose:
		s.close(false, nil)
	case KindPathChallenge:
		if len(pt) == 8 {
			s.answerChallenge(kp, pt, from, via)
		}
	case KindPathResponse:
		if len(pt) == 8 {
			s.onPathResponse(pt)
		}
	}
}
