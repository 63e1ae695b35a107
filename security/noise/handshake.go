package noise

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flynn/noise"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/security"
)

// errAbandoned ends a dial whose handshake lost a simultaneous open: the
// session comes from the peer's handshake instead.
var errAbandoned = errors.New("noise: handshake abandoned for the peer's")

// newNoise starts a flynn/noise handshake state with this package's suite.
func (t *Transport) newNoise(p Pattern, initiator bool, static *localStatic, rs []byte, eph *dhKeypair) (*noise.HandshakeState, *suite, error) {
	su := &suite{rng: t.rng, localStat: static.kp.private[:], fixedEph: eph}
	if static == t.primary {
		su.cache = t.ssCache
	}
	np := noise.HandshakeIK
	if p == PatternXX {
		np = noise.HandshakeXX
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   su,
		Random:        t.rng,
		Pattern:       np,
		Initiator:     initiator,
		Prologue:      []byte(prologue),
		StaticKeypair: static.kp.noiseKey(),
		PeerStatic:    rs,
	})
	if err != nil {
		return nil, nil, err
	}
	su.hs = hs
	return hs, su, nil
}

// newKeypair turns the two cipher states of a finished XX handshake
// (flynn/noise's) into a keypair and wipes every other key the handshake
// held.
func (t *Transport) newKeypair(localIndex, remoteIndex uint32, initiator bool, cs1, cs2 *noise.CipherState, su *suite) *keypair {
	c1, _ := cs1.Cipher().(*aeadCipher)
	c2, _ := cs2.Cipher().(*aeadCipher)
	su.wipe(c1, c2)
	return t.keypairOf(localIndex, remoteIndex, initiator, c1, c2, nil)
}

// keypairOf makes a keypair of a handshake's two transport ciphers (c1
// seals from initiator to responder). A responder passes msg1, the cipher
// of message 1's payload, to open the 0-RTT packets that may follow.
func (t *Transport) keypairOf(localIndex, remoteIndex uint32, initiator bool, c1, c2, msg1 *aeadCipher) *keypair {
	kp := &keypair{localIndex: localIndex, remoteIndex: remoteIndex, initiator: initiator, created: t.now()}
	if initiator {
		kp.send, kp.recv = c1, c2
	} else {
		kp.send, kp.recv = c2, c1
	}
	if msg1 != nil {
		t.early.add(remoteIndex, &earlyRx{kp: kp, created: kp.created, msg1: msg1}, kp.created, t.cfg.HandshakeTimeout)
	}
	return kp
}

// handshake is an initiator's handshake in flight: a new session's (listed
// in Transport.dials when the peer is known) or a session's rekey.
type handshake struct {
	t            *Transport
	localIndex   uint32
	remoteID     peer.ID // the peer dialled; empty for XX by address
	remoteStatic []byte  // IK: the responder's static key
	// remotePub is the identity the dialled ID names, checked when the dial
	// started (nil when not known).
	remotePub *peer.PublicKey
	static    *localStatic
	path      Path
	rekey     *session
	early     []byte
	deadline  time.Time
	done      chan struct{}
	abandoned atomic.Bool // set under Transport.mu when a simultaneous open is lost
	pre       *session    // DialEarly's session, which the keys go into (early.go)
	ticket    *ticket     // PatternResume: the ticket it spends (resume.go)

	// helloTS is the timestamp of the newest hello this handshake sent or
	// is about to send (0: none yet), or tsLost once it lost a simultaneous
	// open: see claimHello and loseLocked.
	helloTS atomic.Uint64

	mu        sync.Mutex
	pattern   Pattern
	ik        symState              // IK: the state after message 1 (ik.go)
	hs        *noise.HandshakeState // XX
	su        *suite                // XX
	payload   []byte                // XX message 1's payload, to rebuild the state after a forged reply
	eph       *dhKeypair
	broken    bool // a forged reply corrupted hs (XX): rebuild before the next read
	packet    []byte
	mac1      [macLen]byte
	sealKey   [32]byte
	cookie    [cookieLen]byte
	cookieAt  time.Time
	hasCookie bool
	rto       time.Duration
	timer     *timerItem
	finished  bool
	sess      *session
	err       error

	// 0-RTT (early.go): the key that seals payloads sent before message 2,
	// how many were sent, and who waits for the end of an early dial.
	earlyAEAD   *aeadCipher
	earlyCtr    uint64
	established []func(security.Session, error)

	// A resumption's state after message 1 and its ephemeral key.
	rst  symState
	reph *dhKeypair
}

// tsLost is helloTS of a dial that lost a simultaneous open.
const tsLost = math.MaxUint64

// claimHello records ts as the timestamp of a hello about to be sent, or
// reports false if the dial lost a simultaneous open (it then sends no
// more hellos). Together with loseLocked it keeps the rule the winner
// relies on: every hello a losing dial sent is older than the answer the
// loser gave the winner's handshake.
func (h *handshake) claimHello(ts uint64) bool {
	for {
		old := h.helloTS.Load()
		if old == tsLost {
			return false
		}
		if h.helloTS.CompareAndSwap(old, ts) {
			return true
		}
	}
}

// loseLocked abandons a dial for the peer's handshake, which we answered
// with a hello of timestamp answerTS (under Transport.mu). It refuses if
// the dial has sent, or is about to send, a hello at least as new: the
// peer, once it has our answer, drops only initiations older than it
// ("One session per peer", rule 2), and would take this one for a new
// session. The answer must then be made again, with a newer timestamp.
func (h *handshake) loseLocked(answerTS uint64) bool {
	for {
		old := h.helloTS.Load()
		if old != tsLost && old >= answerTS {
			return false
		}
		if h.helloTS.CompareAndSwap(old, tsLost) {
			h.abandoned.Store(true)
			return true
		}
	}
}

// isAbandoned reports whether the handshake gave way to the peer's.
func (h *handshake) isAbandoned() bool {
	return h.abandoned.Load() || h.helloTS.Load() == tsLost
}

// newInitiator reserves an index for a handshake; start builds and sends
// its first message.
func (t *Transport) newInitiator(p Pattern, remoteID peer.ID, rs []byte, static *localStatic, path Path, rekey *session, early []byte, deadline time.Time) (*handshake, error) {
	h := &handshake{
		t:            t,
		remoteID:     remoteID,
		remoteStatic: rs,
		static:       static,
		path:         path,
		rekey:        rekey,
		early:        append([]byte(nil), early...),
		deadline:     deadline,
		done:         make(chan struct{}),
		pattern:      p,
	}
	h.timer = newTimerItem(h.onTimer)
	idx, err := t.indexes.add(indexEntry{hs: h})
	if err != nil {
		return nil, err
	}
	h.localIndex = idx
	return h, nil
}

func (h *handshake) start() error {
	h.mu.Lock()
	if h.finished {
		h.mu.Unlock()
		return nil
	}
	if err := h.buildInitiationLocked(); err != nil {
		h.mu.Unlock()
		if errors.Is(err, errAbandoned) {
			return nil // the peer's handshake won before ours went out
		}
		return err
	}
	h.t.stats.handshakesInitiated.Add(1)
	h.rto = h.t.cfg.RetransmitInitial
	h.scheduleLocked() // before the write: whatever the reply causes finds the timer set
	_ = h.t.write(h.path, h.packet)
	h.mu.Unlock()
	// The next handshake's key, made while this one waits for its answer.
	h.t.ephs.refill(h.t.rng)
	return nil
}

// buildInitiationLocked makes message 1 for the current pattern.
func (h *handshake) buildInitiationLocked() error {
	if h.pattern == PatternResume {
		return h.buildResumeLocked()
	}
	t := h.t
	h.wipeStateLocked()
	eph, err := t.ephs.take(t.rng)
	if err != nil {
		return err
	}
	var msg []byte
	var sealed *aeadCipher // the cipher that sealed IK message 1's payload
	if h.pattern == PatternIK {
		hello := Hello{Timestamp: t.timestamp(), Ed25519: t.edPub}
		if !h.claimHello(hello.Timestamp) {
			eph.wipe()
			return errAbandoned
		}
		if h.rekey != nil {
			hello.Rekey = true
		} else {
			if h.static == t.primary && t.sig != nil {
				hello.Signature = t.sig
			}
			hello.Early = h.early
		}
		var rs [32]byte
		copy(rs[:], h.remoteStatic)
		st, m, c, err := ikWrite1(eph, &h.static.kp, &rs, t.staticDH(h.static), hello.Append(nil))
		if err != nil {
			eph.wipe()
			return err
		}
		h.ik, h.eph, msg, sealed = st, eph, m, c
		h.sealKey = labelKey(labelCookie, h.remoteStatic)
	} else {
		hs, su, err := h.newNoiseLocked(eph)
		if err != nil {
			eph.wipe()
			return err
		}
		// XX message 1 carries no payload of its own; it is padded so that
		// the reply stays within three times its size.
		var payload []byte
		if pad := minXXInitiation - (initiationHeaderLen + keyLen + 2*macLen); pad > 0 {
			payload = make([]byte, pad)
		}
		h.sealKey = t.xxSealKey
		m, _, _, err := hs.WriteMessage(nil, payload)
		if err != nil {
			su.wipe()
			return err
		}
		h.hs, h.su, h.payload, h.eph, msg = hs, su, payload, su.ephemeral, m
	}
	h.broken = false
	if h.earlyAEAD != nil {
		h.earlyAEAD.wipe()
		h.earlyAEAD = nil
	}
	if sealed != nil {
		if h.pre != nil && h.rekey == nil {
			// 0-RTT packets are sealed under a key derived from message 1's
			// payload key (after es and ss).
			h.earlyAEAD = deriveEarlyKey(sealed)
		}
		sealed.wipe()
	}
	in := Initiation{Pattern: h.pattern, SenderIndex: h.localIndex, Message: msg}
	pkt := in.Append(make([]byte, 0, initiationHeaderLen+len(msg)+2*macLen))
	mac1Key := t.xxMAC1Key
	if h.pattern == PatternIK {
		mac1Key = labelKey(labelMAC1, h.remoteStatic)
	}
	setMAC1(pkt, &mac1Key)
	copy(h.mac1[:], pkt[mac1Offset(pkt):])
	h.packet = pkt
	h.refreshMAC2Locked()
	return nil
}

// wipeStateLocked wipes the handshake state of the last message 1 (its
// ephemeral key among it).
func (h *handshake) wipeStateLocked() {
	if h.su != nil {
		h.su.wipe()
		h.su = nil
	}
	h.hs = nil
	h.ik.wipe()
	if h.eph != nil {
		h.eph.wipe()
		h.eph = nil
	}
}

// rebuildLocked restores the XX state after a forged reply corrupted it
// (flynn/noise does not roll back a failed Diffie-Hellman), by replaying
// message 1 with the same ephemeral key.
func (h *handshake) rebuildLocked() error {
	hs, su, err := h.newNoiseLocked(h.eph)
	if err != nil {
		return err
	}
	if _, _, _, err := hs.WriteMessage(nil, h.payload); err != nil {
		return err
	}
	if old := h.su; old != nil {
		old.ephemeral = nil // still ours: the new state uses it
		old.wipe()
	}
	h.hs, h.su, h.broken = hs, su, false
	return nil
}

// newNoiseLocked starts the flynn/noise state of IK or XX message 1 with
// the ephemeral key eph.
func (h *handshake) newNoiseLocked(eph *dhKeypair) (*noise.HandshakeState, *suite, error) {
	return h.t.newNoise(h.pattern, true, h.static, h.peerStatic(), eph)
}

// buildResumeLocked makes a resumption's message 1 (resume.go, nnpsk0.go).
func (h *handshake) buildResumeLocked() error {
	t := h.t
	if h.reph == nil {
		e, err := newEphemeral(t.rng)
		if err != nil {
			return err
		}
		h.reph = e
	}
	hello := Hello{Timestamp: t.timestamp(), Early: h.early}
	if !h.claimHello(hello.Timestamp) {
		return errAbandoned
	}
	st, msg, c := resumeWrite1(&h.ticket.psk, h.reph, hello.Append(nil))
	h.rst = st
	if h.earlyAEAD != nil {
		h.earlyAEAD.wipe()
		h.earlyAEAD = nil
	}
	if h.pre != nil {
		h.earlyAEAD = deriveEarlyKey(c)
	}
	c.wipe()
	in := ResumeInitiation{SenderIndex: h.localIndex, TicketID: h.ticket.id, Message: msg}
	pkt := in.Append(make([]byte, 0, resumeHeaderLen+len(msg)+2*macLen))
	mac1Key := labelKey(labelMAC1, h.remoteStatic)
	setMAC1(pkt, &mac1Key)
	copy(h.mac1[:], pkt[mac1Offset(pkt):])
	h.packet = pkt
	h.sealKey = labelKey(labelCookie, h.remoteStatic)
	h.refreshMAC2Locked()
	return nil
}

// dropTicketLocked wipes a resumption's ticket and state (spent or given up).
func (h *handshake) dropTicketLocked() {
	h.ticket.wipe()
	h.ticket = nil
	h.rst.wipe()
	if h.reph != nil {
		h.reph.wipe()
		h.reph = nil
	}
}

// peerStatic is the responder's static key as a pre-message (IK only).
func (h *handshake) peerStatic() []byte {
	if h.pattern == PatternIK {
		return h.remoteStatic
	}
	return nil
}

func (h *handshake) refreshMAC2Locked() {
	if h.hasCookie && h.t.now().Sub(h.cookieAt) < cookieLifetime {
		setMAC2(h.packet, &h.cookie)
	} else {
		clear(h.packet[mac2Offset(h.packet):])
	}
}

func (h *handshake) scheduleLocked() {
	// ±10 % jitter keeps peers that lost packets together from retrying together.
	d := h.rto + time.Duration((rand.Float64()*0.2-0.1)*float64(h.rto))
	when := h.t.now().Add(d)
	if when.After(h.deadline) {
		when = h.deadline
	}
	h.t.timers.schedule(h.timer, when)
}

// onTimer retransmits message 1 with backoff, or gives up at the deadline.
func (h *handshake) onTimer() {
	h.mu.Lock()
	if h.finished || h.isAbandoned() {
		h.mu.Unlock()
		return
	}
	if !h.t.now().Before(h.deadline) {
		h.mu.Unlock()
		h.fail(security.ErrHandshakeTimeout)
		return
	}
	if h.pattern == PatternResume {
		// No answer: the responder may have lost the ticket and, under
		// load, says nothing. A full handshake costs a little more CPU.
		h.resumeFallbackLocked()
		h.mu.Unlock()
		return
	}
	h.refreshMAC2Locked()
	_ = h.t.write(h.path, h.packet)
	h.t.stats.retransmissions.Add(1)
	h.rto *= 2
	if h.rto > h.t.cfg.RetransmitMax {
		h.rto = h.t.cfg.RetransmitMax
	}
	h.scheduleLocked()
	h.mu.Unlock()
}

// wait blocks until the handshake ends or ctx is done. The handshake goes
// on after ctx ends (other dials may wait for it; its own deadline ends it).
func (h *handshake) wait(ctx context.Context) (*session, error) {
	select {
	case <-h.done:
		return h.sess, h.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fail ends the handshake with err.
func (h *handshake) fail(err error) {
	h.mu.Lock()
	if h.finished {
		h.mu.Unlock()
		return
	}
	h.finishLocked(nil, err)
	h.mu.Unlock()
	if !errors.Is(err, errAbandoned) {
		h.t.stats.handshakesFailed.Add(1)
	}
	if h.rekey != nil {
		h.rekey.rekeyEnded(h, err)
	}
	h.endEarly(nil, err)
}

// finishLocked records the result, frees the index (unless a keypair took
// it over) and wakes the dialler.
func (h *handshake) finishLocked(s *session, err error) {
	h.finished = true
	h.sess, h.err = s, err
	h.t.timers.cancel(h.timer)
	h.wipeStateLocked()
	if h.earlyAEAD != nil {
		h.earlyAEAD.wipe()
		h.earlyAEAD = nil
	}
	h.dropTicketLocked()
	if err != nil {
		h.t.indexes.removeIf(h.localIndex, h)
	}
	if h.rekey == nil && h.remoteID != "" {
		h.t.mu.Lock()
		if h.t.dials[h.remoteID] == h {
			delete(h.t.dials, h.remoteID)
		}
		h.t.mu.Unlock()
	}
	close(h.done)
}

// takeOver ends a dial that lost a simultaneous open with the session the
// peer's handshake made; its early data, which the peer dropped with its
// initiation, is sent on that session.
func (h *handshake) takeOver(s *session) {
	h.mu.Lock()
	if h.finished {
		h.mu.Unlock()
		return
	}
	h.finishLocked(s, nil)
	h.t.indexes.removeIf(h.localIndex, h)
	early := h.early
	h.mu.Unlock()
	if len(early) > 0 {
		_ = s.Send(early)
	}
	h.endEarly(s, nil)
}

// onResponse handles message 2 of our handshake.
func (h *handshake) onResponse(m *Response, from netip.AddrPort, via Path) {
	t := h.t
	h.mu.Lock()
	if h.finished || h.isAbandoned() || m.Step != 2 {
		h.mu.Unlock()
		return
	}
	if h.pattern == PatternResume {
		h.onResumeResponseLocked(m)
		return
	}
	if h.pattern == PatternIK {
		h.onIKResponseLocked(m)
		return
	}
	if h.broken {
		if err := h.rebuildLocked(); err != nil {
			h.mu.Unlock()
			return
		}
	}
	payload, _, _, err := h.hs.ReadMessage(nil, m.Message)
	if err != nil {
		// Forged or corrupted: keep waiting for the real reply.
		h.broken = true
		h.mu.Unlock()
		t.stats.droppedHandshake.Add(1)
		return
	}
	hello, ok := h.responderHelloLocked(payload)
	if !ok {
		return
	}
	h.continueXXLocked(m, &hello)
}

// responderHelloLocked parses the hello in message 2. When it is
// malformed the handshake fails: the message authenticated, so it is the
// responder's own, and no better one will follow. The keys it made are
// wiped, and h.mu is released.
func (h *handshake) responderHelloLocked(payload []byte, keys ...*aeadCipher) (Hello, bool) {
	hello, err := ParseHello(payload)
	if err != nil {
		for _, k := range keys {
			k.wipe()
		}
		h.mu.Unlock()
		h.fail(fmt.Errorf("noise: responder's hello: %w", err))
		return Hello{}, false
	}
	return hello, true
}

// onIKResponseLocked reads IK message 2. A message that does not
// authenticate leaves the state as it was (the real one may follow).
func (h *handshake) onIKResponseLocked(m *Response) {
	t := h.t
	payload, c1, c2, err := ikRead2(&h.ik, h.eph, &h.static.kp, m.Message)
	if err != nil {
		h.mu.Unlock()
		t.stats.droppedHandshake.Add(1)
		return
	}
	h.eph.wipe()
	h.eph = nil
	hello, ok := h.responderHelloLocked(payload, c1, c2)
	if !ok {
		return
	}
	h.completeIKLocked(m, &hello, c1, c2)
}

// onResumeResponseLocked reads a resumption's message 2 and installs its
// keys: the ticket vouches for the peer's identity. A message that does
// not authenticate leaves the state as it was (the real one may follow).
func (h *handshake) onResumeResponseLocked(m *Response) {
	t := h.t
	payload, c1, c2, err := resumeRead2(&h.rst, h.reph, m.Message)
	if err != nil {
		h.mu.Unlock()
		t.stats.droppedHandshake.Add(1)
		return
	}
	hello, ok := h.responderHelloLocked(payload, c1, c2)
	if !ok {
		return
	}
	tk := h.ticket
	kp := t.keypairOf(h.localIndex, m.SenderIndex, true, c1, c2, nil)
	t.stats.resumptions.Add(1)
	h.completeLocked(kp, tk.pub, tk.rs, hello.Timestamp, nil)
}

func (h *handshake) completeIKLocked(m *Response, hello *Hello, c1, c2 *aeadCipher) {
	t := h.t
	var pub *peer.PublicKey
	switch x := hello.X25519; {
	case h.rekey != nil:
		pub = h.rekey.remotePub
	case h.remotePub != nil && string(h.remotePub.X25519()) == string(h.remoteStatic) &&
		(x == nil || string(x) == string(h.remoteStatic)):
		// Message 2 proved the static key we dialled, the one the ID's
		// own key derives to, and names no other: the identity is the one
		// checked when the dial started (what verifyIdentity would make
		// again, decompressing the Ed25519 point a second time).
		pub = h.remotePub
	default:
		ed, _ := h.remoteID.Ed25519()
		var err error
		pub, err = verifyIdentity(ed, h.remoteStatic, hello.X25519, hello.Signature)
		if err != nil {
			c1.wipe()
			c2.wipe()
			h.mu.Unlock()
			h.fail(fmt.Errorf("%w: %v", security.ErrWrongPeer, err))
			return
		}
	}
	kp := t.keypairOf(h.localIndex, m.SenderIndex, true, c1, c2, nil)
	var rs [32]byte
	copy(rs[:], h.remoteStatic)
	h.completeLocked(kp, pub, rs, hello.Timestamp, nil)
}

// continueXXLocked checks the responder's identity in XX message 2 and
// answers with message 3.
func (h *handshake) continueXXLocked(m *Response, hello *Hello) {
	t := h.t
	rs := append([]byte(nil), h.hs.PeerStatic()...)
	pub, err := verifyIdentity(hello.Ed25519, rs, hello.X25519, hello.Signature)
	if err != nil {
		h.mu.Unlock()
		h.fail(err)
		return
	}
	id := peer.IDFromPublicKey(pub)
	if h.remoteID != "" && id != h.remoteID {
		h.mu.Unlock()
		h.fail(fmt.Errorf("%w: dialled %s, %s answered", security.ErrWrongPeer, h.remoteID, id))
		return
	}
	if id == t.id {
		h.mu.Unlock()
		h.fail(errors.New("noise: dialled oneself"))
		return
	}
	if h.rekey == nil {
		t.mu.Lock()
		s := t.sessions[id]
		t.mu.Unlock()
		if s != nil && !s.isClosed() {
			// A session came up meanwhile (the peer dialled us): use it,
			// and leave the responder's half-open state to expire.
			early := h.early
			h.finishLocked(s, nil)
			h.t.indexes.removeIf(h.localIndex, h)
			h.mu.Unlock()
			if len(early) > 0 {
				_ = s.Send(early)
			}
			h.endEarly(s, nil)
			return
		}
	}
	mine := Hello{Timestamp: t.timestamp(), Ed25519: t.edPub, Signature: t.sig, Early: h.early}
	if !h.claimHello(mine.Timestamp) {
		// Lost a simultaneous open meanwhile: the peer's session carries
		// on (takeOver ends this dial with it).
		h.mu.Unlock()
		return
	}
	msg, cs1, cs2, err := h.hs.WriteMessage(nil, mine.Append(nil))
	if err != nil {
		h.mu.Unlock()
		h.fail(err)
		return
	}
	r := Response{Step: 3, SenderIndex: h.localIndex, ReceiverIndex: m.SenderIndex, Message: msg}
	pkt := r.Append(make([]byte, 0, responseHeaderLen+len(msg)))
	_ = t.write(h.path, pkt)
	kp := t.newKeypair(h.localIndex, m.SenderIndex, true, cs1, cs2, h.su)
	h.su = nil
	var rsa [32]byte
	copy(rsa[:], rs)
	h.completeLocked(kp, pub, rsa, hello.Timestamp, pkt)
}

// completeLocked installs a keypair we initiated: into the session being
// rekeyed, into a live session with the peer (a crossing handshake), or
// into a new session. confirm is XX message 3, re-sent until the peer
// confirms the keys. It unlocks h.mu.
func (h *handshake) completeLocked(kp *keypair, pub *peer.PublicKey, rs [32]byte, remoteEpoch uint64, confirm []byte) {
	t := h.t
	t.stats.handshakesCompleted.Add(1)
	if h.rekey != nil {
		s := h.rekey
		h.finishLocked(s, nil)
		h.mu.Unlock()
		// Publish the index before the first packet under the keys goes
		// out, so that the reply finds them.
		kp.sess = s
		t.indexes.replace(kp.localIndex, indexEntry{kp: kp})
		s.installInitiated(kp, confirm, remoteEpoch)
		t.issueTicket(s, kp)
		s.rekeyEnded(h, nil)
		t.stats.rekeys.Add(1)
		return
	}
	id := peer.IDFromPublicKey(pub)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		kp.wipe()
		h.finishLocked(nil, ErrClosed)
		h.mu.Unlock()
		h.endEarly(nil, ErrClosed)
		return
	}
	if t.dials[id] == h {
		delete(t.dials, id)
	}
	s := t.sessions[id]
	merged := s != nil && !s.isClosed()
	if merged {
		t.stats.simultaneousOpens.Add(1)
	} else if pre, ok := h.adoptLocked(id, pub); ok {
		// An early dial's session gets the keys: the layer above has used
		// it since DialEarly returned.
		s = pre
		t.sessions[id] = s
	} else {
		s = t.newSession(id, pub, rs, h.static, h.path, true, remoteEpoch)
		s.xxInitiated = h.pattern == PatternXX
		t.sessions[id] = s
	}
	t.mu.Unlock()
	kp.sess = s
	t.indexes.replace(kp.localIndex, indexEntry{kp: kp})
	s.installInitiated(kp, confirm, remoteEpoch)
	h.finishLocked(s, nil)
	h.mu.Unlock()
	h.endEarly(s, nil)
	// The ticket serves the next dial: made once the dialler has its session.
	if h.pattern != PatternXX {
		t.issueTicket(s, kp)
	}
	if t.log.Enabled(context.Background(), slog.LevelDebug) {
		t.log.Debug("session established", "remote", id.ShortString(), "pattern", h.pattern.String(), "initiator", true, "merged", merged)
	}
}

// onCookie takes a cookie reply to our initiation and re-sends it at once
// with mac2.
func (h *handshake) onCookie(m *CookieReply) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.finished {
		return
	}
	c, ok := openCookie(m, &h.mac1, &h.sealKey)
	if !ok {
		h.t.stats.droppedHandshake.Add(1)
		return
	}
	h.t.stats.cookiesReceived.Add(1)
	h.cookie, h.cookieAt, h.hasCookie = c, h.t.now(), true
	h.refreshMAC2Locked()
	_ = h.t.write(h.path, h.packet)
	h.t.stats.retransmissions.Add(1)
}

// onRefusal handles a responder saying it has none of the keys we dialled:
// fall back to XX, which authenticates whoever is there.
func (h *handshake) onRefusal(m *Refusal) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.finished || h.rekey != nil || h.isAbandoned() || !bytes.Equal(m.MAC1[:], h.mac1[:]) {
		return
	}
	if h.pattern == PatternResume {
		h.resumeFallbackLocked()
		return
	}
	if h.pattern != PatternIK {
		return
	}
	h.pattern = PatternXX
	if err := h.buildInitiationLocked(); err != nil {
		return
	}
	_ = h.t.write(h.path, h.packet)
	h.rto = h.t.cfg.RetransmitInitial
	h.scheduleLocked()
}

// resumeFallbackLocked gives up a resumption (the responder has no such
// ticket, or did not answer) and sends IK instead, with a new ephemeral key.
func (h *handshake) resumeFallbackLocked() {
	h.dropTicketLocked()
	h.pattern, h.static = PatternIK, h.t.primary
	// IK to the static key the peer's ID names (its identity is then
	// checked as for any IK dial).
	if pub, err := h.remoteID.PublicKey(); err == nil {
		h.remoteStatic = pub.X25519()
	}
	h.t.stats.resumeFallbacks.Add(1)
	if err := h.buildInitiationLocked(); err != nil {
		return
	}
	_ = h.t.write(h.path, h.packet)
	h.rto = h.t.cfg.RetransmitInitial
	h.scheduleLocked()
}

// inbound is a responder's handshake that has state but is not confirmed:
// an XX handshake waiting for message 3, or an IK one whose keys wait for
// the initiator's first packet. Its message 2 is kept so that a
// retransmitted initiation is answered without recomputing anything.
type inbound struct {
	key        [32]byte // the initiator's ephemeral key
	pattern    Pattern
	localIndex uint32
	created    time.Time
	timer      *timerItem

	mu          sync.Mutex
	done        bool
	path        Path
	response    []byte
	recvBytes   int // from the initiation's address, for the 3× limit
	sentBytes   int
	hs          *noise.HandshakeState // XX
	su          *suite
	remoteIndex uint32
	msg1        []byte     // XX message 1, to rebuild the state after a forged message 3
	eph         *dhKeypair // our XX ephemeral key, for the same
	hello2      []byte
	broken      bool
	sess        *session // IK: the session the keys belong to
	kp          *keypair
}

// dropInbound forgets an inbound handshake (it expired, was confirmed, or
// the transport closes). An IK session that was never confirmed ends with it.
func (t *Transport) dropInbound(ib *inbound) {
	t.mu.Lock()
	if t.inbound[ib.key] == ib {
		delete(t.inbound, ib.key)
	}
	t.mu.Unlock()
	t.timers.cancel(ib.timer)
	t.early.remove(ib.kp)
	ib.mu.Lock()
	if ib.done {
		ib.mu.Unlock()
		return
	}
	ib.done = true
	s, kp := ib.sess, ib.kp
	if ib.su != nil {
		ib.su.wipe()
		ib.su = nil
	}
	ib.hs = nil
	t.indexes.removeIf(ib.localIndex, ib)
	ib.mu.Unlock()
	if s != nil && kp != nil {
		s.inboundExpired(kp)
	}
}

// confirmInbound forgets an inbound handshake whose keys were confirmed;
// the keys of an IK handshake or a resumption leave a ticket.
func (t *Transport) confirmInbound(ib *inbound) {
	t.mu.Lock()
	if t.inbound[ib.key] == ib {
		delete(t.inbound, ib.key)
	}
	t.mu.Unlock()
	if ib.pattern != PatternXX {
		t.issueTicket(ib.sess, ib.kp)
	}
	t.timers.cancel(ib.timer)
	t.early.remove(ib.kp)
	ib.mu.Lock()
	ib.done = true
	ib.mu.Unlock()
}

// idLess orders peer IDs for tie-breaks: the lower ID's handshake wins a
// simultaneous open.
func idLess(a, b peer.ID) bool { return a < b }
