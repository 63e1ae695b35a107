package noise

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/security"
	"github.com/ipv8/go-ipv8/transport"
)

func TestIKFirstFlightCarriesEarlyData(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	// Nothing comes back from b: whatever b gets, it got from a's first flight.
	n.setFilter(func(p *fakePacket) []fakePacket {
		if p.from == b.port.LocalAddr() {
			return nil
		}
		return []fakePacket{*p}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.tr.Dial(ctx, b.port.LocalAddr(), b.id(), []byte("GET /early"))
	sb := accept(t, b)
	got := newInbox(sb).waitN(t, 1)
	if string(got[0]) != "GET /early" {
		t.Fatalf("early data %q", got[0])
	}
	if sb.RemotePeer() != a.id() {
		t.Fatal("early data's session is not with the initiator")
	}
	if k := n.packetsSent(a.port.LocalAddr(), b.port.LocalAddr()); k != 1 {
		t.Fatalf("initiator sent %d packets before b had the data, want 1", k)
	}
}

func TestDialWrongPeerFails(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	c := newKey(t) // not on the network
	_, err := a.tr.Dial(ctxT(t, 10*time.Second), b.port.LocalAddr(), c.ID(), nil)
	if !errors.Is(err, security.ErrWrongPeer) {
		t.Fatalf("dial under the wrong ID: err = %v, want ErrWrongPeer", err)
	}
	n.settle()
	if b.tr.Stats().RefusalsSent != 1 {
		t.Fatalf("refusals %d", b.tr.Stats().RefusalsSent)
	}
	b.tr.mu.Lock()
	sessions := len(b.tr.sessions)
	b.tr.mu.Unlock()
	if sessions != 0 {
		t.Fatal("the wrong responder kept a session")
	}
	a.tr.mu.Lock()
	defer a.tr.mu.Unlock()
	if len(a.tr.sessions) != 0 || len(a.tr.dials) != 0 {
		t.Fatal("the initiator kept state after a wrong-peer dial")
	}
}

// impostorDial makes m claim another identity and dial b by ID; b must
// refuse it.
func impostorDial(t *testing.T, n *fakeNet, m, b *node) {
	t.Helper()
	_, err := m.tr.Dial(ctxT(t, 300*time.Millisecond), b.port.LocalAddr(), b.id(), nil)
	if err == nil {
		t.Fatal("impostor's dial succeeded")
	}
	n.settle()
	if got := b.tr.Stats().DroppedHandshake; got == 0 {
		t.Fatal("responder did not count the impostor's handshake as failed")
	}
	b.tr.mu.Lock()
	defer b.tr.mu.Unlock()
	if len(b.tr.sessions) != 0 || len(b.tr.inbound) != 0 {
		t.Fatal("responder kept state for an impostor")
	}
}

func TestImpostorClaimingAnotherIdentityRefused(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	victim := newKey(t)
	m := newNode(t, n, "10.0.0.66:666", nil, Config{Clock: clk})
	m.tr.edPub = victim.Public().Ed25519() // claims the victim's ID with its own static key
	impostorDial(t, n, m, b)
}

func TestImpostorSigningWithAnotherKeyRefused(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	victim := newPyKey(t)
	m := newNode(t, n, "10.0.0.66:666", newPyKey(t), Config{Clock: clk})
	// Claims the victim's identity; signs its own static key with its own key.
	m.tr.edPub = victim.Public().Ed25519()
	impostorDial(t, n, m, b)

	// And a victim's genuine signature does not help with another static key.
	m2 := newNode(t, n, "10.0.0.67:667", newPyKey(t), Config{Clock: clk})
	m2.tr.edPub = victim.Public().Ed25519()
	m2.tr.sig = staticSignature(victim, victim.Public().X25519())
	impostorDial(t, n, m2, b)
}

func TestImpostorResponderRefusedByXXInitiator(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	m := newNode(t, n, "10.0.0.66:666", nil, Config{Clock: clk})
	victim := newKey(t)
	m.tr.edPub = victim.Public().Ed25519()
	_, err := a.tr.Dial(ctxT(t, 10*time.Second), m.port.LocalAddr(), "", nil)
	if !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("XX with an impostor responder: err = %v, want ErrNoIdentity", err)
	}
	// Dialling the victim's ID at the impostor's address fails too.
	_, err = a.tr.Dial(ctxT(t, 10*time.Second), m.port.LocalAddr(), victim.ID(), nil)
	if err == nil {
		t.Fatal("dial of the victim's ID at the impostor succeeded")
	}
}

func TestPyIPv8IdentitiesAuthenticate(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	for _, c := range []struct {
		name     string
		pyA, pyB bool
		byID     bool
	}{
		{"IK to an imported identity", false, true, true},
		{"IK from an imported identity", true, false, true},
		{"IK between imported identities", true, true, true},
		{"XX between imported identities", true, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ka, kb := newKey(t), newKey(t)
			if c.pyA {
				ka = newPyKey(t)
			}
			if c.pyB {
				kb = newPyKey(t)
			}
			a := newNode(t, n, fmt.Sprintf("10.1.0.%d:1", len(c.name)), ka, Config{Clock: clk})
			b := newNode(t, n, fmt.Sprintf("10.2.0.%d:2", len(c.name)), kb, Config{Clock: clk})
			sa, sb := pair(t, a, b, c.byID)
			if !sa.RemotePublicKey().Equal(kb.Public()) {
				t.Fatal("initiator learnt a wrong public key (X25519 half)")
			}
			if !sb.RemotePublicKey().Equal(ka.Public()) {
				t.Fatal("responder learnt a wrong public key")
			}
			ib := newInbox(sb)
			sa.Send([]byte("py"))
			ib.waitN(t, 1)
		})
	}
}

// capture records the data packets a filter sees from one address, and
// delivers them (or not).
func captureFrom(n *fakeNet, from netip.AddrPort, deliver bool) *[][]byte {
	var got [][]byte
	n.setFilter(func(p *fakePacket) []fakePacket {
		if p.from == from && len(p.data) > 0 && p.data[0] == transport.TypeNoiseData && p.data[1] == byte(KindData) {
			got = append(got, append([]byte(nil), p.data...))
			if !deliver {
				return nil
			}
		}
		return []fakePacket{*p}
	})
	return &got
}

func TestReplayedAndTamperedPacketsDropped(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	sa, sb := pair(t, a, b, true)
	ib := newInbox(sb)
	n.settle()
	pkts := captureFrom(n, a.port.LocalAddr(), true)
	for i := 0; i < 10; i++ {
		sa.Send([]byte(fmt.Sprintf("m%d", i)))
	}
	ib.waitN(t, 10)
	n.settle()
	n.setFilter(nil)
	captured := append([][]byte(nil), (*pkts)...)
	if len(captured) != 10 {
		t.Fatalf("captured %d packets", len(captured))
	}

	before := b.tr.Stats()
	for _, p := range captured {
		n.inject(a.port.LocalAddr(), b.port.LocalAddr(), p)
	}
	n.settle()
	after := b.tr.Stats()
	if d := after.DroppedReplay - before.DroppedReplay; d != 10 {
		t.Fatalf("replays counted %d, want 10", d)
	}
	if ib.count() != 10 {
		t.Fatalf("a replay was delivered: %d messages", ib.count())
	}

	// Flip every bit of every byte of one packet.
	p := captured[3]
	before = b.tr.Stats()
	injected := 0
	for i := 0; i < len(p); i++ {
		for bit := 0; bit < 8; bit++ {
			q := append([]byte(nil), p...)
			q[i] ^= 1 << bit
			n.inject(a.port.LocalAddr(), b.port.LocalAddr(), q)
			injected++
		}
	}
	n.settle()
	after = b.tr.Stats()
	dropped := (after.DroppedAuth - before.DroppedAuth) + (after.DroppedMalformed - before.DroppedMalformed) +
		(after.DroppedUnknownIndex - before.DroppedUnknownIndex) + (after.DroppedReplay - before.DroppedReplay)
	// A flipped type byte goes to another handler or none (0x07 → 0x05,
	// 0x06, 0x03, 0x0F, 0x17, 0x27, 0x47, 0x87); all are dropped somewhere.
	if ib.count() != 10 {
		t.Fatalf("a tampered packet was delivered: %d messages", ib.count())
	}
	if after.DroppedAuth == before.DroppedAuth {
		t.Fatal("no tampered packet counted as failing authentication")
	}
	if dropped+8 < uint64(injected) {
		t.Fatalf("dropped %d of %d tampered packets (plus at most 8 type-byte flips elsewhere)", dropped, injected)
	}
	// The session still works.
	sa.Send([]byte("after"))
	if got := ib.waitN(t, 11); string(got[10]) != "after" {
		t.Fatal("session broken by tampered packets")
	}
}

func TestOutOfOrderPacketsWithinWindowDecrypt(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk, PendingQueueLimit: 8})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	sa, sb := pair(t, a, b, true)
	ib := newInbox(sb)
	n.settle()
	pkts := captureFrom(n, a.port.LocalAddr(), false)
	const total = 5000
	for i := 0; i < total; i++ {
		if err := sa.Send([]byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	n.settle()
	n.setFilter(nil)
	captured := append([][]byte(nil), (*pkts)...)
	if len(captured) != total {
		t.Fatalf("captured %d", len(captured))
	}
	before := b.tr.Stats()
	// Newest first, then back in time: the window covers ReplayWindow
	// counters below the newest.
	for i := len(captured) - 1; i >= 0; i-- {
		n.inject(a.port.LocalAddr(), b.port.LocalAddr(), captured[i])
	}
	n.settle()
	after := b.tr.Stats()
	if got := ib.count(); got != ReplayWindow {
		t.Fatalf("delivered %d of %d reversed packets, want the %d within the window", got, total, ReplayWindow)
	}
	if d := after.DroppedReplay - before.DroppedReplay; d != total-ReplayWindow {
		t.Fatalf("dropped %d as too old, want %d", d, total-ReplayWindow)
	}
	msgs := ib.all()
	if string(msgs[0]) != fmt.Sprint(total-1) || string(msgs[len(msgs)-1]) != fmt.Sprint(total-ReplayWindow) {
		t.Fatalf("first %q last %q", msgs[0], msgs[len(msgs)-1])
	}
}

func TestSessionsHaveNoGoroutines(t *testing.T) {
	// Per-session state is a struct: the timer heap holds at most one item
	// per session, and nothing else runs per session.
	n := newFakeNet(t)
	clk := newFakeClock()
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	var nodes []*node
	for i := 0; i < 20; i++ {
		nodes = append(nodes, newNode(t, n, fmt.Sprintf("10.0.1.%d:1", i+1), nil, Config{Clock: clk}))
	}
	for _, a := range nodes {
		pair(t, a, b, true)
	}
	n.settle()
	if got := b.tr.timers.len(); got > 2*len(nodes) {
		t.Fatalf("%d timer items for %d sessions", got, len(nodes))
	}
}

func TestSessionCloseTellsPeer(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	sa, sb := pair(t, a, b, true)
	n.settle()
	sa.Close()
	select {
	case <-sb.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("peer's session did not end")
	}
	if err := sa.Send([]byte("x")); !errors.Is(err, security.ErrSessionClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if b.tr.indexes.len() != 0 || a.tr.indexes.len() != 0 {
		t.Fatalf("indexes left: a %d b %d", a.tr.indexes.len(), b.tr.indexes.len())
	}
	// A new session replaces it.
	sa2, sb2 := pair(t, a, b, true)
	if sa2 == sa || sb2 == sb {
		t.Fatal("closed session reused")
	}
}

func TestDialReturnsLiveSession(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	sa, sb := pair(t, a, b, true)
	ib := newInbox(sb)
	again, err := a.tr.Dial(ctxT(t, time.Second), b.port.LocalAddr(), b.id(), []byte("rides the session"))
	if err != nil || again != sa {
		t.Fatalf("second dial: %v, same=%v", err, again == sa)
	}
	if got := ib.waitN(t, 1); !bytes.Equal(got[0], []byte("rides the session")) {
		t.Fatal("early data of the second dial lost")
	}
	if a.tr.Stats().HandshakesInitiated != 1 {
		t.Fatal("second dial ran a handshake")
	}
}

func TestHandshakeTimesOut(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk, HandshakeTimeout: 3 * time.Second})
	ch := make(chan error, 1)
	go func() {
		_, err := a.tr.Dial(context.Background(), netip.MustParseAddrPort("10.9.9.9:9"), newKey(t).ID(), nil)
		ch <- err
	}()
	eventually(t, "dial started", func() bool { return a.tr.timers.len() == 1 })
	for i := 0; i < 40; i++ {
		clk.Advance(100 * time.Millisecond)
	}
	select {
	case err := <-ch:
		if !errors.Is(err, security.ErrHandshakeTimeout) {
			t.Fatalf("err %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dial did not time out")
	}
	if a.tr.indexes.len() != 0 {
		t.Fatal("timed-out handshake kept its index")
	}
	if st := a.tr.Stats(); st.Retransmissions < 2 || st.HandshakesFailed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

var _ = peer.ID("")
