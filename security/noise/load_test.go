package noise

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/transport"
)

// capturePath is a Path that keeps what is written to it.
type capturePath struct {
	mu   sync.Mutex
	addr netip.AddrPort
	pkts [][]byte
}

func (c *capturePath) WritePacket(p []byte) error {
	c.mu.Lock()
	c.pkts = append(c.pkts, append([]byte(nil), p...))
	c.mu.Unlock()
	return nil
}
func (c *capturePath) Addr() netip.AddrPort     { return c.addr }
func (c *capturePath) Kind() transport.PathKind { return transport.PathDirect }
func (c *capturePath) Overhead() int            { return 0 }

// craftInitiations makes n valid, distinct IK initiations from m's identity
// to target, without sending them.
func craftInitiations(t testing.TB, m, target *node, n int) [][]byte {
	t.Helper()
	pub, err := target.id().PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		h, err := m.tr.newInitiator(PatternIK, target.id(), pub.X25519(), m.tr.primary, &capturePath{}, nil, nil, m.tr.now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		h.mu.Lock()
		if err := h.buildInitiationLocked(); err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte(nil), h.packet...))
		h.mu.Unlock()
		h.fail(errAbandoned)
	}
	return out
}

func spoofed(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, 16, byte(i / 250), byte(i%250 + 1)}), uint16(4000+i))
}

// stateSizes is every piece of per-handshake or per-source state a
// responder holds.
func stateSizes(tr *Transport) (inbound, sessions, indexes, timers, replay int) {
	tr.mu.Lock()
	inbound, sessions, replay = len(tr.inbound), len(tr.sessions), tr.lastInit.Len()
	tr.mu.Unlock()
	return inbound, sessions, tr.indexes.len(), tr.timers.len(), replay
}

func TestSpoofedFloodPutsResponderInCookieMode(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	const threshold = 4
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk, CookieThreshold: threshold, MaxHalfOpen: 1024})
	m := newNode(t, n, "10.0.0.66:666", nil, Config{Clock: clk})
	inits := craftInitiations(t, m, b, 400)
	recv := map[netip.AddrPort]int{}
	for i, p := range inits {
		src := spoofed(i)
		recv[src] += len(p)
		n.inject(src, b.port.LocalAddr(), p)
	}
	n.settle()
	st := b.tr.Stats()
	if st.CookieRepliesSent < uint64(len(inits)-threshold) {
		t.Fatalf("cookie replies %d for %d initiations over a threshold of %d", st.CookieRepliesSent, len(inits), threshold)
	}
	inb, sessions, _, _, _ := stateSizes(b.tr)
	if inb > threshold || sessions > 1 {
		t.Fatalf("under load the responder holds %d half-open handshakes and %d sessions", inb, sessions)
	}
	for src, r := range recv {
		if s := n.bytesSent(b.port.LocalAddr(), src); s > 3*r {
			t.Fatalf("sent %d bytes to unvalidated %v after receiving %d", s, src, r)
		}
	}
	// The state taken before the load was noticed expires: nothing remains.
	clk.Advance(DefaultHandshakeTimeout + time.Second)
	n.settle()
	inb, sessions, idx, timers, _ := stateSizes(b.tr)
	if inb != 0 || sessions != 0 || idx != 0 || timers != 0 {
		t.Fatalf("after expiry: %d half-open, %d sessions, %d indexes, %d timers", inb, sessions, idx, timers)
	}
}

func TestCookieModeKeepsNoPerSourceState(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk, CookieThreshold: -1})
	m := newNode(t, n, "10.0.0.66:666", nil, Config{Clock: clk})
	inits := craftInitiations(t, m, b, 300)
	for i, p := range inits {
		n.inject(spoofed(i), b.port.LocalAddr(), p)
	}
	// And XX initiations, which need no identity at all.
	xx := Initiation{Pattern: PatternXX, SenderIndex: 7, Message: make([]byte, minXXInitiation-initiationHeaderLen-2*macLen)}
	copy(xx.Message, m.tr.primary.kp.public[:]) // any point will do
	xp := xx.Append(nil)
	setMAC1(xp, &b.tr.xxMAC1Key)
	for i := 0; i < 100; i++ {
		n.inject(spoofed(1000+i), b.port.LocalAddr(), xp)
	}
	n.settle()
	inb, sessions, idx, timers, replay := stateSizes(b.tr)
	if inb != 0 || sessions != 0 || idx != 0 || timers != 0 || replay != 0 {
		t.Fatalf("cookie mode kept state: %d half-open, %d sessions, %d indexes, %d timers, %d replay entries", inb, sessions, idx, timers, replay)
	}
	if st := b.tr.Stats(); st.CookieRepliesSent != 400 || st.HandshakesCompleted != 0 {
		t.Fatalf("stats %+v", st)
	}
	for i := range inits {
		if s := n.bytesSent(b.port.LocalAddr(), spoofed(i)); s > 3*len(inits[i]) || s != cookieReplyLen {
			t.Fatalf("sent %d bytes to %v for an initiation of %d", s, spoofed(i), len(inits[i]))
		}
	}
}

func TestCookieReplyLetsRealInitiatorThrough(t *testing.T) {
	for _, byID := range []bool{true, false} {
		t.Run(fmt.Sprintf("byID=%v", byID), func(t *testing.T) {
			n := newFakeNet(t)
			clk := newFakeClock()
			a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
			b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk, CookieThreshold: -1})
			sa, sb := pair(t, a, b, byID)
			ib := newInbox(sb)
			sa.Send([]byte("through"))
			ib.waitN(t, 1)
			if a.tr.Stats().CookiesReceived != 1 || b.tr.Stats().CookieRepliesSent != 1 {
				t.Fatalf("a %+v\nb %+v", a.tr.Stats(), b.tr.Stats())
			}
		})
	}
}

func TestAmplificationBoundedForUnvalidatedAddress(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	m := newNode(t, n, "10.0.0.66:666", nil, Config{Clock: clk})
	victim := netip.MustParseAddrPort("192.0.2.7:53")
	// An authenticated initiation (with early data the responder answers)
	// arrives with the victim's address as its source.
	inits := craftInitiations(t, m, b, 1)
	recv := len(inits[0])
	n.inject(victim, b.port.LocalAddr(), inits[0])
	sb := accept(t, b)
	big := make([]byte, 1000)
	for i := 0; i < 100; i++ {
		if err := sb.Send(big); err != nil {
			t.Fatal(err)
		}
	}
	// The initiation retransmitted: the cached message 2 goes again, once.
	n.inject(victim, b.port.LocalAddr(), inits[0])
	recv += len(inits[0])
	n.settle()
	sent := n.bytesSent(b.port.LocalAddr(), victim)
	if sent == 0 || sent > 3*recv {
		t.Fatalf("sent %d bytes to an unvalidated address that sent %d", sent, recv)
	}
	if b.tr.Stats().DroppedAmplification == 0 && len(sb.(*session).pending) == 0 {
		t.Fatal("nothing was held back by the amplification limit")
	}
}

func TestJunkInitiationsCostNoStateOrAmplification(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	const count = 500
	for i := 0; i < count; i++ {
		junk := make([]byte, 175)
		rand.Read(junk)
		junk[0], junk[1] = transport.TypeNoiseInitiation, byte(PatternIK)
		n.inject(spoofed(i), b.port.LocalAddr(), junk)
	}
	n.settle()
	inb, sessions, idx, timers, replay := stateSizes(b.tr)
	if inb+sessions+idx+timers+replay != 0 {
		t.Fatalf("junk left state: %d %d %d %d %d", inb, sessions, idx, timers, replay)
	}
	st := b.tr.Stats()
	if st.DroppedMAC1 != count || st.HandshakesCompleted != 0 {
		t.Fatalf("stats %+v", st)
	}
	for i := 0; i < count; i++ {
		if s := n.bytesSent(b.port.LocalAddr(), spoofed(i)); s > 3*175 {
			t.Fatalf("%d bytes sent for 175 of junk", s)
		}
	}
}
