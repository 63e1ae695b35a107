package noise

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/ipv8/go-ipv8/transport"
)

// viaPath stands in for a relay circuit: what one side writes reaches the
// other side's HandleVia with the path back.
type viaPath struct {
	addr netip.AddrPort
	mu   sync.Mutex
	to   *Transport
	back *viaPath
	n    int
}

func (p *viaPath) WritePacket(pkt []byte) error {
	cp := append([]byte(nil), pkt...)
	p.mu.Lock()
	p.n++
	p.mu.Unlock()
	go p.to.HandleVia(cp, p.back)
	return nil
}
func (p *viaPath) Addr() netip.AddrPort     { return p.addr }
func (p *viaPath) Kind() transport.PathKind { return transport.PathRelayed }
func (p *viaPath) Overhead() int            { return 8 }
func (p *viaPath) writes() int              { p.mu.Lock(); defer p.mu.Unlock(); return p.n }

func viaPair(a, b *node) (ab, ba *viaPath) {
	relay := netip.MustParseAddrPort("192.0.2.99:4000")
	ab = &viaPath{addr: relay, to: b.tr}
	ba = &viaPath{addr: relay, to: a.tr, back: ab}
	ab.back = ba
	return ab, ba
}

// SetPath moves a session to another path on the local side's initiative;
// the peer follows when the packets arrive there; and back again — with
// no new handshake.
func TestSetPathMovesSessionAndPeerFollows(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	sa, sb := pair(t, a, b, true)
	ia, ib := newInbox(sa), newInbox(sb)
	n.settle()
	hs := a.tr.Stats().HandshakesInitiated + b.tr.Stats().HandshakesInitiated
	ab, ba := viaPair(a, b)

	if err := sa.(PathSetter).SetPath(ab); err != nil {
		t.Fatal(err)
	}
	if sa.RemoteAddr() != ab.Addr() || sa.(PathSetter).Path() != Path(ab) {
		t.Fatalf("a sends to %s", sa.RemoteAddr())
	}
	sa.Send([]byte("over the relay"))
	ib.waitN(t, 1)
	eventually(t, "b follows a onto the relay", func() bool { return sb.(PathSetter).Path() == Path(ba) })
	sb.Send([]byte("back over the relay"))
	if got := ia.waitN(t, 1); string(got[0]) != "back over the relay" {
		t.Fatalf("a got %q", got[0])
	}
	if ba.writes() == 0 {
		t.Fatal("b did not send over the relay")
	}

	// And back to the direct path (a hole punch succeeded).
	if err := sa.(PathSetter).SetPath(a.tr.DirectPath(b.port.LocalAddr())); err != nil {
		t.Fatal(err)
	}
	sa.Send([]byte("direct again"))
	ib.waitN(t, 2)
	// b follows once a packet over the direct path is the newest it has
	// seen. a's answer to b's path challenge, sent over the relay (where
	// the challenge came from) and delivered on a goroutine of its own,
	// may carry a higher counter and arrive after "direct again": a's
	// next packets then move b, as a's traffic would.
	eventually(t, "b follows a onto the direct path", func() bool {
		if sb.RemoteAddr() == a.port.LocalAddr() {
			return true
		}
		sa.Send([]byte("direct again"))
		return false
	})
	if sa.(PathSetter).Path().Kind() != transport.PathDirect {
		t.Fatal("a is not on the direct path")
	}
	if now := a.tr.Stats().HandshakesInitiated + b.tr.Stats().HandshakesInitiated; now != hs {
		t.Fatal("moving ran a handshake")
	}
}

// After SetPath, packets the peer still sends over the old path are
// accepted but do not move the session back.
func TestSetPathIsPinnedAgainstLatePacketsOnTheOldPath(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	sa, sb := pair(t, a, b, true)
	ia := newInbox(sa)
	n.settle()
	ab, _ := viaPair(a, b)
	if err := sa.(PathSetter).SetPath(ab); err != nil {
		t.Fatal(err)
	}
	// b has not heard over the relay yet: it still sends directly.
	sb.Send([]byte("late, on the old path"))
	ia.waitN(t, 1)
	n.settle()
	if sa.(PathSetter).Path() != Path(ab) {
		t.Fatalf("a late packet moved a's session back to %s", sa.RemoteAddr())
	}
}
