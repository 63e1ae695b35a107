package noise

import (
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/crypto/blake2s"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/ipv8/go-ipv8/peer"
)

// Resumption: a peer seen before is dialled with a handshake of one
// Diffie-Hellman per side instead of IK's four. Each IK handshake (and each
// resumption) leaves both sides a ticket: a secret derived from the new
// transport keys once both hold them, and an ID derived from it. The next
// dial to that peer, by either side, runs Noise NNpsk0 keyed by the secret
// (e, ee: forward secret through the ephemeral keys) and names the ticket
// in the clear. A ticket is used once (both sides drop it), expires after
// TicketLifetime, and is wiped when dropped. docs/protocol/noise.md,
// "Resumption", says what this gives up against a full handshake.

const (
	labelTicketPSK = "go-ipv8/noise/ticket psk"
	labelTicketID  = "go-ipv8/noise/ticket id"
)

// ticket is what resumes a session with one peer.
type ticket struct {
	id      [ticketIDLen]byte
	psk     [32]byte
	peer    peer.ID
	pub     *peer.PublicKey
	rs      [32]byte     // the peer's static key (mac1 and cookie keys, IK fallback)
	static  *localStatic // ours, as the peer knows it
	expires time.Time
}

// deriveTicket makes the ticket secret and ID of a keypair both sides hold:
// from the initiator-to-responder key (the same on both), by Noise's REKEY
// construction (the keystream at nonce 2^64−1, which transport packets
// never reach) keyed into BLAKE2s with a label each.
func deriveTicket(kp *keypair) (id [ticketIDLen]byte, psk [32]byte, ok bool) {
	kp.mu.RLock()
	if kp.wiped {
		kp.mu.RUnlock()
		return id, psk, false
	}
	c := kp.recv
	if kp.initiator {
		c = kp.send
	}
	var zeros [32]byte
	ks := c.Encrypt(make([]byte, 0, 48), math.MaxUint64, nil, zeros[:])
	kp.mu.RUnlock()
	m, _ := blake2s.New256(ks[:32])
	m.Write([]byte(labelTicketPSK))
	m.Sum(psk[:0])
	m, _ = blake2s.New128(ks[:32])
	m.Write([]byte(labelTicketID))
	m.Sum(id[:0])
	clear(ks)
	return id, psk, true
}

// ticketStore holds at most one ticket per peer (the newest), bounded by an
// LRU; dropped tickets are wiped.
type ticketStore struct {
	lifetime time.Duration

	mu     sync.Mutex
	byPeer *lru.Cache[peer.ID, *ticket]
	byID   map[[ticketIDLen]byte]*ticket
}

func newTicketStore(size int, lifetime time.Duration) *ticketStore {
	if size <= 0 || lifetime <= 0 {
		return nil
	}
	ts := &ticketStore{lifetime: lifetime, byID: make(map[[ticketIDLen]byte]*ticket)}
	// The callback runs inside the store's calls, under ts.mu.
	c, err := lru.NewWithEvict[peer.ID, *ticket](size, func(_ peer.ID, tk *ticket) {
		if ts.byID[tk.id] == tk {
			delete(ts.byID, tk.id)
		}
		clear(tk.psk[:])
	})
	if err != nil {
		return nil
	}
	ts.byPeer = c
	return ts
}

// put stores tk as the peer's ticket, dropping the one it replaces.
func (ts *ticketStore) put(tk *ticket) {
	if ts == nil {
		return
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.byPeer.Remove(tk.peer)
	ts.byPeer.Add(tk.peer, tk)
	ts.byID[tk.id] = tk
}

// take removes and returns the peer's ticket for a dial, if it is still good.
func (ts *ticketStore) take(p peer.ID, now time.Time) *ticket {
	if ts == nil {
		return nil
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	tk, ok := ts.byPeer.Peek(p)
	if !ok {
		return nil
	}
	// Copy before the removal wipes the stored one.
	out := *tk
	ts.byPeer.Remove(p)
	if now.After(out.expires) {
		clear(out.psk[:])
		return nil
	}
	return &out
}

// lookup returns a copy of the ticket named id (for an answer), if good.
func (ts *ticketStore) lookup(id [ticketIDLen]byte, now time.Time) *ticket {
	if ts == nil {
		return nil
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	tk := ts.byID[id]
	if tk == nil {
		return nil
	}
	if now.After(tk.expires) {
		ts.byPeer.Remove(tk.peer)
		return nil
	}
	out := *tk
	return &out
}

// drop removes the ticket named id (it was used).
func (ts *ticketStore) drop(id [ticketIDLen]byte) {
	if ts == nil {
		return
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if tk := ts.byID[id]; tk != nil {
		ts.byPeer.Remove(tk.peer)
	}
}

func (ts *ticketStore) len() int {
	if ts == nil {
		return 0
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.byPeer.Len()
}

func (ts *ticketStore) purge() {
	if ts == nil {
		return
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.byPeer.Purge()
}

func (tk *ticket) wipe() {
	if tk != nil {
		clear(tk.psk[:])
	}
}

// issueTicket stores the ticket of a keypair of s that both sides now hold
// (the initiator had message 2, the responder a packet under the keys).
func (t *Transport) issueTicket(s *session, kp *keypair) {
	if t.tickets == nil || s == nil || kp == nil {
		return
	}
	id, psk, ok := deriveTicket(kp)
	if !ok {
		return
	}
	t.tickets.put(&ticket{
		id: id, psk: psk, peer: s.remoteID, pub: s.remotePub, rs: s.remoteStatic,
		static: s.localStatic, expires: t.now().Add(t.cfg.TicketLifetime),
	})
}

// ticketFor takes our ticket for p if a new dial over path can resume with
// it. Resumptions go over direct paths only: a relay hands initiations to
// HandleVia, which knows IK and XX.
func (t *Transport) ticketFor(p peer.ID, path Path) *ticket {
	if _, direct := path.(*directPath); !direct || p == "" {
		return nil
	}
	return t.tickets.take(p, t.now())
}

// resume makes a new dial (not started yet) a resumption with tk.
func (h *handshake) resume(tk *ticket) {
	h.mu.Lock()
	h.pattern, h.ticket, h.static = PatternResume, tk, tk.static
	h.remoteStatic = append([]byte(nil), tk.rs[:]...)
	h.mu.Unlock()
}

// handleInitiationOrResume is the port's handler for packet type 0x04:
// resumptions to onResume, the other patterns to onInitiation.
func (t *Transport) handleInitiationOrResume(pkt []byte, from netip.AddrPort) {
	if len(pkt) > 1 && Pattern(pkt[1]) == PatternResume {
		t.onResume(pkt, from, nil)
		return
	}
	t.onInitiation(pkt, from, nil)
}

// onResume answers a resumption: the same order of checks as an IK
// initiation (mac1, retransmission, load and cookie, half-open limit),
// then the ticket, and only then Noise. An unknown or expired ticket gets
// a refusal (unless under load), and the initiator falls back to IK.
func (t *Transport) onResume(pkt []byte, from netip.AddrPort, via Path) {
	in, err := ParseResumeInitiation(pkt)
	if err != nil {
		t.stats.droppedMalformed.Add(1)
		return
	}
	now := t.now()
	asInit := Initiation{Pattern: PatternResume, SenderIndex: in.SenderIndex, MAC1: in.MAC1}
	static := t.staticFor(pkt)
	if static == nil {
		// Not for any key of ours: as for IK, a refusal (unless under load)
		// sends the initiator to XX, which finds out who is here.
		t.stats.droppedMAC1.Add(1)
		t.refuse(&asInit, pkt, from, via, now)
		return
	}
	var eph [32]byte
	copy(eph[:], in.ephemeral())
	if !t.mayAnswer(&asInit, pkt, eph, &static.sealKey, from, via, now) {
		return
	}
	t.answerResume(&in, &asInit, pkt, static, eph, from, via, now, false)
}

// answerResume answers a resumption that passed the checks before any
// state: the ticket, Noise, the timestamps, then the verdict. It answers
// at most twice (retried): see verdict.retry.
func (t *Transport) answerResume(in *ResumeInitiation, asInit *Initiation, pkt []byte, static *localStatic, eph [32]byte, from netip.AddrPort, via Path, now time.Time, retried bool) {
	tk := t.tickets.lookup(in.TicketID, now)
	if tk == nil || tk.static != static {
		t.stats.droppedStale.Add(1)
		t.refuse(asInit, pkt, from, via, now)
		return
	}
	defer tk.wipe()
	st, re, payload, msg1c, err := resumeRead1(&tk.psk, in.Message)
	if err != nil {
		t.stats.droppedHandshake.Add(1)
		return
	}
	hello, err := ParseHello(payload)
	if err != nil || hello.Rekey {
		st.wipe()
		msg1c.wipe()
		t.stats.droppedMalformed.Add(1)
		return
	}
	id := tk.peer
	if last, ok := t.lastInit.Peek(id); ok && hello.Timestamp <= last {
		st.wipe()
		msg1c.wipe()
		t.stats.droppedStale.Add(1)
		return
	}
	e, err := newEphemeral(t.rng)
	if err != nil {
		st.wipe()
		msg1c.wipe()
		return
	}
	mine := Hello{Timestamp: t.timestamp()}
	msg2, c1, c2, err := resumeWrite2(&st, e, &re, mine.Append(nil))
	e.wipe()
	if err != nil {
		msg1c.wipe()
		t.stats.droppedHandshake.Add(1)
		return
	}
	ib, kp, pkt2, ok := t.newInbound(eph, PatternResume, now, t.replyPath(from, via), in.SenderIndex, len(pkt), msg2, c1, c2, msg1c)
	if !ok {
		return
	}
	a := admission{
		id: id, pub: tk.pub, rs: tk.rs, static: tk.static, ts: hello.Timestamp, answerTS: mine.Timestamp,
		eph: eph, ib: ib, kp: kp, pkt: pkt, pkt2: pkt2, early: t.freshEarly(&hello, now), now: now,
		spent: func() {
			// The ticket is spent: a replay of this initiation finds none.
			t.tickets.drop(in.TicketID)
			t.stats.resumptions.Add(1)
		},
	}
	switch t.admit(&a) {
	case admitRetry:
		if !retried {
			t.answerResume(in, asInit, pkt, static, eph, from, via, t.now(), true)
			return
		}
		t.stats.droppedStale.Add(1)
	}
}
