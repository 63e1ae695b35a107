package noise

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/crypto/blake2s"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/security"
)

// 0-RTT data: a session from DialEarly exists before its handshake
// completes, and what the layer above sends meanwhile goes out at once in
// 0-RTT packets (KindEarly) right behind the initiation, sealed under a key
// both sides derive from IK message 1 (after es and ss). The responder opens
// them as soon as it has authenticated the initiation and made the session,
// so the first request reaches it with the handshake and its reply can
// leave with message 2: connect plus first exchange in one round trip.
// docs/protocol/noise.md, "0-RTT data", says what can be replayed.

const (
	// labelEarly separates the 0-RTT key from every other use of message 1's
	// payload key.
	labelEarly = "go-ipv8/noise/0-RTT"
	// maxEarlyPackets bounds the 0-RTT packets of one dial (about the mux's
	// initial congestion window); later payloads wait for the keys.
	maxEarlyPackets = 32
)

// errDialMerged ends an early dial whose handshake lost to, or was merged
// with, a session the peer opened at the same time: that session carries
// on instead of the one DialEarly returned.
var errDialMerged = errors.New("noise: the dial crossed the peer's; its session carries on")

// deriveEarlyKey turns the cipher that sealed message 1's payload into the
// 0-RTT key: Noise's REKEY construction (the ChaCha20 keystream at nonce
// 2^64−1, a nonce Noise never uses for messages) keyed into BLAKE2s with
// our label.
func deriveEarlyKey(c *aeadCipher) *aeadCipher {
	var zeros [32]byte
	out := c.Encrypt(make([]byte, 0, 48), math.MaxUint64, nil, zeros[:])
	mac, _ := blake2s.New256(out[:32])
	clear(out)
	mac.Write([]byte(labelEarly))
	var k [32]byte
	mac.Sum(k[:0])
	a := newAEADCipher(k[:])
	clear(k[:])
	return a
}

// DialEarly implements security.EarlyDialer: it starts an IK handshake
// with p at addr and returns the session at once (see SendEarly). A live
// session with p is returned as it is; an early dial to p in flight shares
// its session; a blocking Dial to p in flight is waited for.
func (t *Transport) DialEarly(ctx context.Context, addr netip.AddrPort, p peer.ID, established func(security.Session, error)) (security.EarlySession, error) {
	return t.dialEarly(ctx, &directPath{port: t.port, addr: addr}, p, established)
}

func (t *Transport) dialEarly(ctx context.Context, path Path, p peer.ID, established func(security.Session, error)) (security.EarlySession, error) {
	if p == "" {
		return nil, errors.New("noise: an early dial needs the peer's ID")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if p == t.id {
		return nil, errors.New("noise: dialling oneself")
	}
	if established == nil {
		established = func(security.Session, error) {}
	}
	deadline := t.handshakeDeadline(ctx)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	if s := t.sessions[p]; s != nil && !s.isClosed() {
		t.mu.Unlock()
		established(nil, nil)
		return s, nil
	}
	if h := t.dials[p]; h != nil {
		h.mu.Lock()
		pre := h.pre
		joined := pre != nil && !h.finished
		if joined {
			h.established = append(h.established, established)
		}
		h.mu.Unlock()
		t.mu.Unlock()
		if joined {
			return pre, nil
		}
		// A blocking dial, or one that is just ending: its result.
		s, err := h.wait(ctx)
		if err != nil {
			return nil, err
		}
		established(nil, nil)
		return s, nil
	}
	// A ticket for p makes it a resumption; otherwise IK to the key the
	// ID names.
	var rs [32]byte
	var pub *peer.PublicKey
	tk := t.ticketFor(p, path)
	if tk != nil {
		pub, rs = tk.pub, tk.rs
	} else {
		var err error
		if pub, err = p.PublicKey(); err != nil {
			t.mu.Unlock()
			return nil, err
		}
		copy(rs[:], pub.X25519())
	}
	h, err := t.newInitiator(PatternIK, p, rs[:], t.primary, path, nil, nil, deadline)
	if err != nil {
		t.mu.Unlock()
		tk.wipe()
		return nil, err
	}
	h.remotePub = pub
	if tk != nil {
		h.resume(tk)
	}
	pre := t.newSession(p, pub, rs, t.primary, path, false, 0)
	// No rekey may start on a session whose first handshake runs: Send
	// queues what it cannot send until that handshake's keys arrive.
	pre.rekeyRetry = t.stampOf(deadline)
	h.pre = pre
	h.established = []func(security.Session, error){established}
	t.dials[p] = h
	t.mu.Unlock()
	if err := h.start(); err != nil {
		h.fail(err)
		return nil, err
	}
	return pre, nil
}

// SendEarly implements security.EarlySession: while the session's
// handshake runs, b goes out in a 0-RTT packet at once. It reports false
// when the session has keys, was not made by DialEarly, or the dial's
// 0-RTT budget is spent (or it fell back to XX, which has no 0-RTT).
func (s *session) SendEarly(b []byte) (bool, error) {
	if s.cur.Load() != nil || s.closedFlag.Load() {
		return false, nil
	}
	if len(b) > s.MaxPayload() {
		return false, fmt.Errorf("%w: %d bytes, at most %d", security.ErrTooLarge, len(b), s.MaxPayload())
	}
	t := s.t
	t.mu.Lock()
	h := t.dials[s.remoteID]
	t.mu.Unlock()
	if h == nil || h.pre != s {
		return false, nil
	}
	return h.sendEarly(b)
}

// sendEarly seals b under the 0-RTT key and sends it behind the initiation.
func (h *handshake) sendEarly(b []byte) (bool, error) {
	t := h.t
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.finished || h.earlyAEAD == nil || h.earlyCtr >= maxEarlyPackets {
		return false, nil
	}
	ctr := h.earlyCtr
	h.earlyCtr++
	buf := t.getBuf()
	defer t.putBuf(buf)
	hdr := DataHeader{Kind: KindEarly, ReceiverIndex: h.localIndex, Counter: ctr}
	out := hdr.Append(buf.b[:0])
	out = h.earlyAEAD.Encrypt(out, ctr, out[:DataHeaderLen], b)
	buf.b = out
	if err := t.write(h.path, out); err != nil {
		return true, err
	}
	t.stats.earlySent.Add(1)
	return true, nil
}

// endEarly tells an early dial's callers how it ended, once h.mu is
// released: with the session DialEarly returned up, or with that session
// closed and, when the peer's handshake won, the session that carries on.
func (h *handshake) endEarly(s *session, err error) {
	h.mu.Lock()
	pre, cbs := h.pre, h.established
	h.established = nil
	h.mu.Unlock()
	if pre == nil || cbs == nil {
		return
	}
	var other security.Session
	if err == nil && s != pre {
		err = errDialMerged
		if pre.isClosed() {
			// Closed by its user while the handshake ran: nobody waits
			// for a replacement.
			err, s = security.ErrSessionClosed, nil
		}
	}
	if err != nil {
		pre.close(false, err)
		if s != nil && s != pre {
			other = s
		}
	}
	for _, cb := range cbs {
		cb(other, err)
	}
}

// adoptLocked makes the early dial's session the one the handshake
// installs its keys into (under t.mu), or reports false.
func (h *handshake) adoptLocked(id peer.ID, pub *peer.PublicKey) (*session, bool) {
	pre := h.pre
	if pre == nil || pre.isClosed() || pre.remoteID != id {
		return nil, false
	}
	if !pre.remotePub.Equal(pub) {
		// A py-ipv8 identity told its own X25519 half in message 2.
		pre.remotePub = pub
	}
	pre.xxInitiated = h.pattern == PatternXX
	pre.localStatic = h.static // a resumption keeps the static key the ticket knows
	return pre, true
}

// earlyRx is what a responder keeps to open an initiator's 0-RTT packets:
// the keypair (and so the session) its initiation made, and message 1's
// payload cipher until the first 0-RTT packet turns it into the 0-RTT key.
type earlyRx struct {
	kp      *keypair
	created time.Time

	mu     sync.Mutex
	msg1   *aeadCipher // wiped once aead is derived
	aead   *aeadCipher
	replay replayWindow
}

func (e *earlyRx) wipe() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.msg1 != nil {
		e.msg1.wipe()
		e.msg1 = nil
	}
	if e.aead != nil {
		e.aead.wipe()
		e.aead = nil
	}
}

// earlyTable holds the responder's earlyRx by the initiator's sender index
// (random, so a collision between two initiators is rare; both are tried).
// An entry leaves when its keys are confirmed or its handshake dropped, and
// entries whose handshake was refused after they were made are swept once
// older than HandshakeTimeout, so the table is bounded by the handshakes of
// one timeout.
type earlyTable struct {
	mu        sync.Mutex
	m         map[uint32][]*earlyRx
	n         int
	sweepSize int
}

func newEarlyTable() *earlyTable {
	return &earlyTable{m: make(map[uint32][]*earlyRx), sweepSize: 64}
}

func (et *earlyTable) add(idx uint32, e *earlyRx, now time.Time, maxAge time.Duration) {
	et.mu.Lock()
	var swept []*earlyRx
	if et.n >= 2*et.sweepSize {
		for k, list := range et.m {
			keep := list[:0]
			for _, x := range list {
				if now.Sub(x.created) > maxAge || x.kp.isWiped() {
					swept = append(swept, x)
				} else {
					keep = append(keep, x)
				}
			}
			clear(list[len(keep):])
			if len(keep) == 0 {
				delete(et.m, k)
			} else {
				et.m[k] = keep
			}
		}
		et.n -= len(swept)
		et.sweepSize = max(64, et.n)
	}
	et.m[idx] = append(et.m[idx], e)
	et.n++
	et.mu.Unlock()
	for _, x := range swept {
		x.wipe()
	}
}

// remove drops and wipes the entry of kp, if any.
func (et *earlyTable) remove(kp *keypair) {
	if kp == nil {
		return
	}
	et.mu.Lock()
	list := et.m[kp.remoteIndex]
	var gone *earlyRx
	for i, x := range list {
		if x.kp == kp {
			gone = x
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if gone != nil {
		et.n--
		if len(list) == 0 {
			delete(et.m, kp.remoteIndex)
		} else {
			et.m[kp.remoteIndex] = list
		}
	}
	et.mu.Unlock()
	if gone != nil {
		gone.wipe()
	}
}

func (et *earlyTable) lookup(idx uint32, into []*earlyRx) []*earlyRx {
	et.mu.Lock()
	into = append(into, et.m[idx]...)
	et.mu.Unlock()
	return into
}

func (et *earlyTable) len() int {
	et.mu.Lock()
	defer et.mu.Unlock()
	return et.n
}

func (et *earlyTable) clear() {
	et.mu.Lock()
	m := et.m
	et.m = make(map[uint32][]*earlyRx)
	et.n = 0
	et.mu.Unlock()
	for _, list := range m {
		for _, x := range list {
			x.wipe()
		}
	}
}

// handleDataOrEarly is the port's handler for packet type 0x07: 0-RTT
// packets to onEarly, everything else to the data path.
func (t *Transport) handleDataOrEarly(pkt []byte, from netip.AddrPort) {
	if len(pkt) > 1 && Kind(pkt[1]) == KindEarly {
		t.onEarly(pkt, from, nil)
		return
	}
	t.onData(pkt, from, nil)
}

// onEarly opens a 0-RTT packet for a session whose initiation we answered
// and whose keys are not confirmed yet, and delivers its payload. Like a
// data packet it is checked against a replay window before decrypting and
// recorded after; it is dropped when its initiation's timestamp is older
// than EarlyDataMaxAge (as early data in message 1 is).
func (t *Transport) onEarly(pkt []byte, from netip.AddrPort, via Path) {
	h, n, err := ParseEarlyHeader(pkt)
	if err != nil {
		t.stats.droppedMalformed.Add(1)
		return
	}
	var scratch [2]*earlyRx
	cands := t.early.lookup(h.ReceiverIndex, scratch[:0])
	if len(cands) == 0 {
		t.stats.droppedUnknownIndex.Add(1)
		return
	}
	for _, e := range cands {
		if t.openEarly(e, pkt, n, h.Counter, from, via) {
			return
		}
	}
	t.stats.droppedAuth.Add(1)
}

// openEarly tries e on a 0-RTT packet; it reports true when e was the
// packet's (whether or not it was delivered).
func (t *Transport) openEarly(e *earlyRx, pkt []byte, n int, ctr uint64, from netip.AddrPort, via Path) bool {
	kp := e.kp
	s := kp.sess
	if s == nil || s.isClosed() || s.confirmedFlg.Load() || s.cur.Load() != kp {
		return false // a rekey's keys, or a session past its 0-RTT phase
	}
	e.mu.Lock()
	if e.aead == nil {
		if e.msg1 == nil {
			e.mu.Unlock()
			return false
		}
		e.aead = deriveEarlyKey(e.msg1)
		e.msg1.wipe()
		e.msg1 = nil
	}
	if !e.replay.check(ctr) {
		e.mu.Unlock()
		t.stats.droppedReplay.Add(1)
		return true
	}
	buf := t.getBuf()
	defer t.putBuf(buf)
	pt, err := e.aead.Decrypt(buf.b[:0], ctr, pkt[:n], pkt[n:])
	if err != nil {
		e.mu.Unlock()
		return false // another initiator's index, or forged
	}
	e.replay.update(ctr)
	e.mu.Unlock()
	s.mu.Lock()
	epoch := s.remoteEpoch
	s.mu.Unlock()
	skew := t.now().Sub(time.Unix(0, int64(epoch)))
	if skew < 0 {
		skew = -skew
	}
	if skew > t.cfg.EarlyDataMaxAge {
		t.stats.droppedEarlyData.Add(1)
		return true
	}
	// The packet authenticated as the initiator's: its bytes count towards
	// what the session may send to that address before it is validated.
	if ps := s.path.Load(); ps.matches(from, via) && !ps.validated.Load() {
		ps.recvBytes.Add(uint64(len(pkt)))
	}
	t.stats.earlyReceived.Add(1)
	t.stats.bytesReceived.Add(uint64(len(pkt)))
	if len(pt) > 0 {
		s.deliver(pt)
	}
	return true
}
