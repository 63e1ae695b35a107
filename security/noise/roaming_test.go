package noise

import (
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/security"
	"github.com/ipv8/go-ipv8/transport"
)

func TestPacketFromNewAddressMovesSession(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	sa, sb := pair(t, a, b, true)
	ia, ib := newInbox(sa), newInbox(sb)
	n.settle()
	handshakes := a.tr.Stats().HandshakesInitiated + b.tr.Stats().HandshakesInitiated

	a.port.move("10.0.0.99:4321") // a's IP changes (or its NAT rebinds)
	sa.Send([]byte("from the new address"))
	ib.waitN(t, 1)
	if got := sb.RemoteAddr(); got != a.port.LocalAddr() {
		t.Fatalf("b sends to %v, want the new address %v", got, a.port.LocalAddr())
	}
	sb.Send([]byte("reply"))
	if got := ia.waitN(t, 1); string(got[0]) != "reply" {
		t.Fatal("reply lost after the move")
	}
	n.settle()
	if !sb.(*session).path.Load().validated.Load() {
		t.Fatal("new address not validated by the path challenge")
	}
	// Plenty of traffic to the new address once validated.
	big := make([]byte, 1000)
	for i := 0; i < 50; i++ {
		sb.Send(big)
	}
	ia.waitN(t, 51)
	if hs := a.tr.Stats().HandshakesInitiated + b.tr.Stats().HandshakesInitiated; hs != handshakes {
		t.Fatal("moving ran a new handshake")
	}
	if b.tr.Stats().Roams != 1 {
		t.Fatalf("roams %d", b.tr.Stats().Roams)
	}
}

func TestForgedPacketFromNewAddressDoesNotMoveSession(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	sa, sb := pair(t, a, b, true)
	ib := newInbox(sb)
	n.settle()
	pkts := captureFrom(n, a.port.LocalAddr(), true)
	sa.Send([]byte("genuine"))
	ib.waitN(t, 1)
	n.settle()
	n.setFilter(nil)
	genuine := (*pkts)[0]

	attacker := netip.MustParseAddrPort("203.0.113.9:9999")
	// A forged packet for a's keys: right index, counter ahead, junk ciphertext.
	forged := append([]byte(nil), genuine...)
	binary.BigEndian.PutUint64(forged[8:16], 1<<20)
	rand.Read(forged[DataHeaderLen:])
	n.inject(attacker, b.port.LocalAddr(), forged)
	// A genuine packet replayed from the attacker's address.
	n.inject(attacker, b.port.LocalAddr(), genuine)
	n.settle()
	if got := sb.RemoteAddr(); got != a.port.LocalAddr() {
		t.Fatalf("session moved to %v", got)
	}
	st := b.tr.Stats()
	if st.DroppedAuth != 1 || st.DroppedReplay != 1 || st.Roams != 0 {
		t.Fatalf("stats %+v", st)
	}
	if n.bytesSent(b.port.LocalAddr(), attacker) != 0 {
		t.Fatal("b answered the attacker")
	}
}

func TestSimultaneousOpenEndsInOneSession(t *testing.T) {
	for i := 0; i < 6; i++ {
		n := newFakeNet(t)
		clk := newFakeClock()
		a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
		b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
		// Hold both initiations until both were sent, then let them cross
		// (in either order).
		var mu sync.Mutex
		var held []fakePacket
		n.setFilter(func(p *fakePacket) []fakePacket {
			if p.data[0] == transport.TypeNoiseInitiation {
				mu.Lock()
				held = append(held, *p)
				mu.Unlock()
				return nil
			}
			return []fakePacket{*p}
		})
		ca := dialAsync(t, a, b, true, []byte("from a"))
		cb := dialAsync(t, b, a, true, []byte("from b"))
		eventually(t, "both initiations", func() bool { mu.Lock(); defer mu.Unlock(); return len(held) == 2 })
		n.setFilter(nil)
		mu.Lock()
		first, second := held[0], held[1]
		if i%2 == 1 {
			first, second = second, first
		}
		mu.Unlock()
		n.inject(first.from, first.to, first.data)
		n.inject(second.from, second.to, second.data)
		ra, rb := <-ca, <-cb
		if ra.err != nil || rb.err != nil {
			t.Fatalf("dials: %v, %v", ra.err, rb.err)
		}
		n.settle()
		for _, nd := range []*node{a, b} {
			nd.tr.mu.Lock()
			sessions, dials, queued := len(nd.tr.sessions), len(nd.tr.dials), len(nd.tr.acceptQ)
			nd.tr.mu.Unlock()
			if sessions != 1 || dials != 0 || queued != 0 {
				t.Fatalf("round %d: %d sessions, %d dials, %d waiting for Accept", i, sessions, dials, queued)
			}
		}
		ka, kb := ra.s.(*session).cur.Load(), rb.s.(*session).cur.Load()
		if ka.remoteIndex != kb.localIndex || kb.remoteIndex != ka.localIndex {
			t.Fatalf("round %d: the two sides hold different keys", i)
		}
		if ka.initiator == kb.initiator {
			t.Fatal("both sides think they initiated the surviving handshake")
		}
		// The lower ID's handshake survives.
		if (a.id() < b.id()) != ka.initiator {
			t.Fatal("the higher ID's handshake survived")
		}
		checkExchange(t, ra.s, rb.s, "from b", "from a")
	}
}

// checkExchange checks that the early data of both dials arrived, once,
// and that the sessions carry traffic both ways.
func checkExchange(t *testing.T, sa, sb security.Session, earlyToA, earlyToB string) {
	t.Helper()
	ia, ib := newInbox(sa), newInbox(sb)
	ia.waitN(t, 1)
	ib.waitN(t, 1)
	sa.Send([]byte("ping"))
	sb.Send([]byte("pong"))
	ga, gb := ia.waitN(t, 2), ib.waitN(t, 2)
	if string(ga[0]) != earlyToA || string(gb[0]) != earlyToB || string(ga[1]) != "pong" || string(gb[1]) != "ping" {
		t.Fatalf("a got %q, b got %q", ga, gb)
	}
}

func TestSimultaneousXXOpenMerges(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	var mu sync.Mutex
	var held []fakePacket
	n.setFilter(func(p *fakePacket) []fakePacket {
		if p.data[0] == transport.TypeNoiseInitiation {
			mu.Lock()
			held = append(held, *p)
			mu.Unlock()
			return nil
		}
		return []fakePacket{*p}
	})
	ca := dialAsync(t, a, b, false, nil)
	cb := dialAsync(t, b, a, false, nil)
	eventually(t, "both initiations", func() bool { mu.Lock(); defer mu.Unlock(); return len(held) == 2 })
	n.setFilter(nil)
	for _, p := range held {
		n.inject(p.from, p.to, p.data)
	}
	ra, rb := <-ca, <-cb
	if ra.err != nil || rb.err != nil {
		t.Fatalf("dials: %v, %v", ra.err, rb.err)
	}
	n.settle()
	for _, nd := range []*node{a, b} {
		nd.tr.mu.Lock()
		sessions, queued := len(nd.tr.sessions), len(nd.tr.acceptQ)
		nd.tr.mu.Unlock()
		if sessions != 1 || queued != 0 {
			t.Fatalf("%d sessions, %d waiting for Accept", sessions, queued)
		}
	}
	if ra.s.(*session).isClosed() || rb.s.(*session).isClosed() {
		t.Fatal("a dialled session was closed")
	}
	ia, ib := newInbox(ra.s), newInbox(rb.s)
	for i := 0; i < 5; i++ {
		ra.s.Send([]byte("x"))
		rb.s.Send([]byte("y"))
	}
	ia.waitN(t, 5)
	ib.waitN(t, 5)
}

func TestRestartedPeerReplacesSession(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	_, sb := pair(t, a, b, true)
	n.settle()
	// a crashes (no close notice) and comes back with the same identity
	// on another port.
	for _, typ := range []byte{transport.TypeNoiseInitiation, transport.TypeNoiseResponse, transport.TypeNoiseCookie, transport.TypeNoiseData} {
		a.port.HandleType(typ, nil)
	}
	clk.Advance(time.Millisecond)
	tr2, err := New(a.key, n.newPort("10.0.0.1:1001"), Config{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer tr2.Close()
	if _, err := tr2.Dial(ctxT(t, 10*time.Second), b.port.LocalAddr(), b.id(), []byte("again")); err != nil {
		t.Fatal(err)
	}
	sb2 := accept(t, b)
	if sb2 == sb || sb2.RemotePeer() != a.id() {
		t.Fatal("the restarted peer did not get a new session")
	}
	select {
	case <-sb.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the old session survived the peer's restart")
	}
	if got := newInbox(sb2).waitN(t, 1); string(got[0]) != "again" {
		t.Fatal("early data of the new session lost")
	}
	b.tr.mu.Lock()
	defer b.tr.mu.Unlock()
	if len(b.tr.sessions) != 1 {
		t.Fatalf("%d sessions with one peer", len(b.tr.sessions))
	}
}
