package noise

import (
	"context"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/internal/netsim"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/security"
	"github.com/ipv8/go-ipv8/transport/udp"
)

// Scenario tests on internal/netsim in virtual time: real transport/udp
// ports over virtual links with loss, reordering, duplication and NATs.

type simNode struct {
	host *netsim.Host
	port *udp.Port
	tr   *Transport
	key  *peer.PrivateKey
}

func newSimNode(t *testing.T, n *netsim.Network, h *netsim.Host, cfg Config) *simNode {
	t.Helper()
	c, err := h.ListenUDP(4000)
	if err != nil {
		t.Fatal(err)
	}
	p := udp.NewPort(c, udp.Config{})
	cfg.Clock = n.Clock()
	key := newKey(t)
	tr, err := New(key, p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close(); p.Close() })
	return &simNode{host: h, port: p, tr: tr, key: key}
}

// runUntil runs virtual time in steps until cond holds.
func runUntil(t *testing.T, n *netsim.Network, limit time.Duration, cond func() bool) {
	t.Helper()
	for waited := time.Duration(0); !cond(); waited += 10 * time.Millisecond {
		if waited > limit {
			t.Fatalf("condition not met within %v of virtual time", limit)
		}
		n.RunFor(10 * time.Millisecond)
	}
}

// simDial dials in the background while the test runs virtual time.
func simDial(t *testing.T, n *netsim.Network, a, b *simNode, addr netip.AddrPort) (security.Session, security.Session) {
	t.Helper()
	ch := make(chan dialResult, 1)
	started := a.tr.Stats().HandshakesInitiated
	go func() {
		s, err := a.tr.Dial(context.Background(), addr, b.key.ID(), nil)
		ch <- dialResult{s, err}
	}()
	// Virtual time must not run ahead of the dial: wait (in real time) for
	// its first message and retransmission timer.
	eventually(t, "dial started", func() bool {
		return a.tr.Stats().HandshakesInitiated > started && a.tr.timers.len() > 0
	})
	// Run virtual time until the dial's outcome is decided (synchronously,
	// on this goroutine), then collect it in real time.
	failed := a.tr.Stats().HandshakesFailed
	runUntil(t, n, 60*time.Second, func() bool {
		a.tr.mu.Lock()
		s := a.tr.sessions[b.key.ID()]
		a.tr.mu.Unlock()
		return s != nil || a.tr.Stats().HandshakesFailed > failed
	})
	var r dialResult
	select {
	case r = <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("dial did not return")
	}
	if r.err != nil {
		t.Fatalf("dial: %v\na %+v\nb %+v\n%v", r.err, a.tr.Stats(), b.tr.Stats(), n.Stats())
	}
	var sb security.Session
	runUntil(t, n, time.Second, func() bool {
		select {
		case sb = <-b.tr.acceptQ:
			return true
		default:
			return false
		}
	})
	return r.s, sb
}

func TestNetsimLossyReorderingLinkDeliversEachPacketOnce(t *testing.T) {
	n := netsim.New(netsim.Config{Seed: 7, Virtual: true})
	defer n.Close()
	lossy := netsim.Link{Latency: 20 * time.Millisecond, Loss: 0.1, Reorder: 0.2, Duplicate: 0.05, Jitter: 2 * time.Millisecond}
	a := newSimNode(t, n, n.NewHost(netip.MustParseAddr("192.0.2.1"), lossy), Config{})
	b := newSimNode(t, n, n.NewHost(netip.MustParseAddr("192.0.2.2"), lossy), Config{})
	sa, sb := simDial(t, n, a, b, b.port.LocalAddr())
	seen := map[int]int{}
	inversions, last := 0, -1
	sb.SetReceiver(func(p []byte) {
		i, _ := strconv.Atoi(string(p))
		seen[i]++
		if i < last {
			inversions++
		}
		last = i
	})
	const total = 2000
	for i := 0; i < total; i++ {
		if err := sa.Send([]byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		if i%20 == 19 {
			n.RunFor(time.Millisecond)
		}
	}
	n.RunFor(time.Second)
	for i, k := range seen {
		if k != 1 {
			t.Fatalf("packet %d delivered %d times", i, k)
		}
	}
	// Each packet crosses two lossy links: about 81 % arrive.
	if len(seen) < total*70/100 || len(seen) > total*90/100 {
		t.Fatalf("%d of %d delivered", len(seen), total)
	}
	if inversions == 0 {
		t.Fatal("the link reordered nothing: the test proves nothing")
	}
	if b.tr.Stats().DroppedReplay == 0 {
		t.Fatal("no duplicate was dropped")
	}
	t.Logf("delivered %d/%d, %d out of order, %d duplicates dropped", len(seen), total, inversions, b.tr.Stats().DroppedReplay)
}

func TestNetsimHandshakeSurvivesHeavyLoss(t *testing.T) {
	n := netsim.New(netsim.Config{Seed: 3, Virtual: true})
	defer n.Close()
	lossy := netsim.Link{Latency: 50 * time.Millisecond, Loss: 0.3}
	a := newSimNode(t, n, n.NewHost(netip.MustParseAddr("192.0.2.1"), lossy), Config{HandshakeTimeout: 30 * time.Second})
	b := newSimNode(t, n, n.NewHost(netip.MustParseAddr("192.0.2.2"), lossy), Config{HandshakeTimeout: 30 * time.Second})
	for i := 0; i < 5; i++ {
		sa, _ := simDial(t, n, a, b, b.port.LocalAddr())
		sa.Close()
		n.RunFor(time.Second)
	}
	if a.tr.Stats().Retransmissions == 0 {
		t.Fatal("no handshake needed a retransmission at 30 % loss per link")
	}
}

func TestNetsimSessionFollowsNATRebindingAndMove(t *testing.T) {
	n := netsim.New(netsim.Config{Seed: 11, Virtual: true})
	defer n.Close()
	link := netsim.Link{Latency: 10 * time.Millisecond}
	natCfg := netsim.NATConfig{Mapping: netsim.EndpointIndependent, Filtering: netsim.AddressAndPortDependent, MappingTimeout: time.Minute, PortAllocation: netsim.PortRandom}
	home := n.NewNAT(netip.MustParseAddr("198.51.100.1"), natCfg, link)
	cafe := n.NewNAT(netip.MustParseAddr("203.0.113.1"), natCfg, link)
	laptop := home.NewHost(netip.MustParseAddr("10.0.0.2"), link)
	a := newSimNode(t, n, laptop, Config{})
	b := newSimNode(t, n, n.NewHost(netip.MustParseAddr("192.0.2.2"), link), Config{})
	sa, sb := simDial(t, n, a, b, b.port.LocalAddr())
	var got []string
	sb.SetReceiver(func(p []byte) { got = append(got, string(p)) })
	var back []string
	sa.SetReceiver(func(p []byte) { back = append(back, string(p)) })
	exchange := func(tag string) {
		t.Helper()
		sa.Send([]byte(tag))
		runUntil(t, n, 5*time.Second, func() bool { return len(got) > 0 && got[len(got)-1] == tag })
		sb.Send([]byte("re:" + tag))
		runUntil(t, n, 5*time.Second, func() bool { return len(back) > 0 && back[len(back)-1] == "re:"+tag })
	}
	exchange("at home")
	first := sb.RemoteAddr()

	home.FlushMappings() // the NAT forgets: a's next packet leaves from a new port
	exchange("after rebinding")
	second := sb.RemoteAddr()
	if second == first {
		t.Fatal("the rebinding did not change a's public address: the test proves nothing")
	}

	laptop.MoveBehind(cafe, netip.MustParseAddr("10.1.0.7")) // a new network altogether
	exchange("at the cafe")
	if third := sb.RemoteAddr(); third.Addr() != netip.MustParseAddr("203.0.113.1") {
		t.Fatalf("b sends to %v, not through the cafe's NAT", third)
	}
	if hs := a.tr.Stats().HandshakesInitiated + b.tr.Stats().HandshakesInitiated; hs != 1 {
		t.Fatalf("%d handshakes for one session across two moves", hs)
	}
	if r := b.tr.Stats().Roams; r != 2 {
		t.Fatalf("%d roams", r)
	}
	t.Logf("a's address as b saw it: %v, %v, %v", first, second, sb.RemoteAddr())
}
