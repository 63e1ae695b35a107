package noise

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/security"
	"github.com/ipv8/go-ipv8/transport"
)

// confirmedPair dials b from a by ID, makes both sides hold the keys (a
// packet each way) and returns both sessions.
func confirmedPair(t *testing.T, n *fakeNet, a, b *node) (security.Session, security.Session) {
	t.Helper()
	sa, sb := pair(t, a, b, true)
	ia, ib := newInbox(sa), newInbox(sb)
	sa.Send([]byte("ping"))
	ib.waitN(t, 1)
	sb.Send([]byte("pong"))
	ia.waitN(t, 1)
	n.settle()
	return sa, sb
}

// closeBoth ends a session on both sides and waits for the peer to see it.
func closeBoth(t *testing.T, n *fakeNet, sa, sb security.Session) {
	t.Helper()
	sa.Close()
	n.settle()
	select {
	case <-sb.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the peer's session did not end")
	}
}

// After a session with a peer, the next dial to it is a resumption (one
// Diffie-Hellman per side), authenticated as the same peer, and data flows.
func TestResumptionAfterSessionWithPeer(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	sa, sb := confirmedPair(t, n, a, b)
	if a.tr.tickets.len() != 1 || b.tr.tickets.len() != 1 {
		t.Fatalf("tickets after a handshake: a %d, b %d", a.tr.tickets.len(), b.tr.tickets.len())
	}
	closeBoth(t, n, sa, sb)

	sa2, sb2 := confirmedPair(t, n, a, b)
	if a.tr.Stats().Resumptions != 1 || b.tr.Stats().Resumptions != 1 {
		t.Fatalf("resumptions: a %d, b %d", a.tr.Stats().Resumptions, b.tr.Stats().Resumptions)
	}
	if sa2.RemotePeer() != b.id() || sb2.RemotePeer() != a.id() {
		t.Fatal("resumed session with the wrong peer")
	}
	if !sb2.RemotePublicKey().Equal(a.key.Public()) || !sa2.RemotePublicKey().Equal(b.key.Public()) {
		t.Fatal("resumed session reports another public key")
	}
	// The resumed session left a new ticket on both sides (chaining).
	if a.tr.tickets.len() != 1 || b.tr.tickets.len() != 1 {
		t.Fatalf("tickets after a resumption: a %d, b %d", a.tr.tickets.len(), b.tr.tickets.len())
	}
	closeBoth(t, n, sa2, sb2)
	// Either side may resume: now b dials a.
	sb3, sa3 := confirmedPair(t, n, b, a)
	if b.tr.Stats().Resumptions != 2 || a.tr.Stats().Resumptions != 2 {
		t.Fatalf("resumptions after b dialled: a %d, b %d", a.tr.Stats().Resumptions, b.tr.Stats().Resumptions)
	}
	_, _ = sb3, sa3
}

// A ticket is spent by its first use: the captured initiation of a
// resumption, replayed after that session ended, makes no session.
func TestResumptionInitiationReplayIsRefused(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	sa, sb := confirmedPair(t, n, a, b)
	closeBoth(t, n, sa, sb)
	var mu sync.Mutex
	var captured []byte
	n.mu.Lock()
	n.tap = func(p fakePacket) {
		if p.data[0] == transport.TypeNoiseInitiation && Pattern(p.data[1]) == PatternResume {
			mu.Lock()
			captured = append([]byte(nil), p.data...)
			mu.Unlock()
		}
	}
	n.mu.Unlock()
	sa2, sb2 := confirmedPair(t, n, a, b)
	closeBoth(t, n, sa2, sb2)
	mu.Lock()
	pkt := captured
	mu.Unlock()
	if pkt == nil {
		t.Fatal("no resumption was sent")
	}
	before := b.tr.Stats()
	n.inject(a.port.LocalAddr(), b.port.LocalAddr(), pkt)
	n.settle()
	after := b.tr.Stats()
	if after.Resumptions != before.Resumptions || after.HandshakesCompleted != before.HandshakesCompleted {
		t.Fatal("a replayed resumption made a session")
	}
	if after.RefusalsSent != before.RefusalsSent+1 {
		t.Fatal("a replayed resumption was not refused")
	}
	select {
	case s := <-b.tr.acceptQ:
		t.Fatalf("a replayed resumption was accepted: %v", s)
	default:
	}
}

// A responder that lost the ticket (it restarted) refuses the resumption,
// and the initiator completes with IK at once.
func TestResumptionUnknownTicketFallsBackToIK(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	sa, _ := confirmedPair(t, n, a, b)
	sa.Close()
	b.tr.Close()
	n.settle()
	b2 := newNode(t, n, "10.0.0.2:2000", b.key, Config{}) // b restarted: same identity, no tickets
	r := <-dialAsync(t, a, b2, true, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	accept(t, b2)
	if st := a.tr.Stats(); st.ResumeFallbacks != 1 || st.Resumptions != 0 {
		t.Fatalf("fallbacks %d, resumptions %d", st.ResumeFallbacks, st.Resumptions)
	}
	if a.tr.Stats().Retransmissions != 0 {
		t.Fatal("the fallback waited for a retransmission instead of the refusal")
	}
}

// A ticket past TicketLifetime is not used.
func TestResumptionTicketExpires(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	cfg := Config{Clock: clk, TicketLifetime: time.Minute}
	a := newNode(t, n, "10.0.0.1:1000", nil, cfg)
	b := newNode(t, n, "10.0.0.2:2000", nil, cfg)
	sa, sb := confirmedPair(t, n, a, b)
	closeBoth(t, n, sa, sb)
	clk.Advance(2 * time.Minute)
	confirmedPair(t, n, a, b)
	if a.tr.Stats().Resumptions != 0 {
		t.Fatal("an expired ticket was used")
	}
}

// Resumption can be turned off.
func TestResumptionDisabled(t *testing.T) {
	n := newFakeNet(t)
	cfg := Config{TicketCacheSize: -1}
	a := newNode(t, n, "10.0.0.1:1000", nil, cfg)
	b := newNode(t, n, "10.0.0.2:2000", nil, cfg)
	sa, sb := confirmedPair(t, n, a, b)
	closeBoth(t, n, sa, sb)
	confirmedPair(t, n, a, b)
	if a.tr.Stats().Resumptions != 0 || b.tr.Stats().Resumptions != 0 {
		t.Fatal("resumed with resumption off")
	}
}

// A resumption carries 0-RTT data too: an early dial to a peer seen before
// delivers before the handshake completes.
func TestResumptionCarriesEarlyData(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	sa, sb := confirmedPair(t, n, a, b)
	closeBoth(t, n, sa, sb)
	release := holdResponses(n)
	res := newEarlyResult()
	se, err := a.tr.DialEarly(ctxT(t, 10*time.Second), b.port.LocalAddr(), b.id(), res.cb)
	if err != nil {
		t.Fatal(err)
	}
	if sent, err := se.SendEarly([]byte("early after resumption")); !sent || err != nil {
		t.Fatal(sent, err)
	}
	sb2 := accept(t, b)
	if got := newInbox(sb2).waitN(t, 1); string(got[0]) != "early after resumption" {
		t.Fatalf("got %q", got[0])
	}
	release()
	if _, err := res.wait(t); err != nil {
		t.Fatal(err)
	}
	if a.tr.Stats().Resumptions != 1 {
		t.Fatal("the early dial did not resume")
	}
}

// A resumption to an address where another identity answers fails the
// dial: the ticket names the peer, and nobody else can answer it.
func TestResumptionToAnotherPeerFails(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	c := newNode(t, n, "10.0.0.3:3000", nil, Config{})
	sa, sb := confirmedPair(t, n, a, b)
	closeBoth(t, n, sa, sb)
	// Dial b's ID at c's address: c has no such static key nor ticket.
	_, err := a.tr.Dial(ctxT(t, 10*time.Second), c.port.LocalAddr(), b.id(), nil)
	if !errors.Is(err, security.ErrWrongPeer) && !errors.Is(err, security.ErrHandshakeTimeout) {
		t.Fatalf("dial b's ID at c: %v", err)
	}
	if c.tr.Stats().HandshakesCompleted != 0 {
		t.Fatal("c completed a handshake for b's ticket")
	}
}

// Identities imported from py-ipv8 (an X25519 key apart from the Ed25519
// key) resume too, in both directions, and keep their full public key.
func TestResumptionWithPyIPv8Identities(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", newPyKey(t), Config{})
	b := newNode(t, n, "10.0.0.2:2000", newPyKey(t), Config{})
	sa, sb := confirmedPair(t, n, a, b)
	closeBoth(t, n, sa, sb)
	sa2, sb2 := confirmedPair(t, n, a, b)
	if a.tr.Stats().Resumptions != 1 {
		t.Fatal("no resumption between py-ipv8 identities")
	}
	if !sa2.RemotePublicKey().Equal(b.key.Public()) || !sb2.RemotePublicKey().Equal(a.key.Public()) {
		t.Fatal("a resumed session lost the full public key")
	}
	closeBoth(t, n, sa2, sb2)
	sb3, sa3 := confirmedPair(t, n, b, a)
	if b.tr.Stats().Resumptions != 2 {
		t.Fatal("the other side did not resume")
	}
	if !sb3.RemotePublicKey().Equal(a.key.Public()) || !sa3.RemotePublicKey().Equal(b.key.Public()) {
		t.Fatal("wrong public keys after the reverse resumption")
	}
}

// A resumed session rekeys like any other (IK between the static keys the
// ticket remembered).
func TestResumedSessionRekeys(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	cfg := Config{Clock: clk, RekeyAfterTime: 10 * time.Second, RejectAfterTime: 40 * time.Second, HandshakeTimeout: 5 * time.Second}
	a := newNode(t, n, "10.0.0.1:1000", nil, cfg)
	b := newNode(t, n, "10.0.0.2:2000", nil, cfg)
	sa, sb := confirmedPair(t, n, a, b)
	closeBoth(t, n, sa, sb)
	sa2, sb2 := confirmedPair(t, n, a, b)
	if a.tr.Stats().Resumptions != 1 {
		t.Fatal("not resumed")
	}
	ib := newInbox(sb2)
	clk.Advance(11 * time.Second)
	sa2.Send([]byte("starts the rekey"))
	n.settle()
	if a.tr.Stats().Rekeys != 1 || b.tr.Stats().Rekeys != 1 {
		t.Fatalf("rekeys: a %d, b %d", a.tr.Stats().Rekeys, b.tr.Stats().Rekeys)
	}
	sa2.Send([]byte("after the rekey"))
	if got := ib.waitN(t, 2); string(got[1]) != "after the rekey" {
		t.Fatalf("got %q", got)
	}
}
