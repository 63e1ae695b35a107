package reliable

import (
	"context"
	"io"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/internal/netsim"
	"github.com/ipv8/go-ipv8/mux/internal/plainsession"
	"github.com/ipv8/go-ipv8/transport"
)

func TestStreamSurvivesAddressChange(t *testing.T) {
	link := netsim.Link{Latency: 2 * time.Millisecond, Bandwidth: 20e6}
	sn := newSimNet(t, 11, link, link)
	p := connect(t, sn.pcC, sn.pcS, Config{}, Config{}, plainPayload)
	events, cancel := p.server.(transport.PathSubscriber).SubscribePathChanges()
	defer cancel()
	// Move the client to a new IP a little into the transfer.
	go func() {
		for p.client.Stats().BytesSent < 2<<20 {
			time.Sleep(2 * time.Millisecond)
		}
		sn.client.SetAddr(netip.MustParseAddr("10.0.9.9"))
	}()
	transfer(t, p, 16<<20, 11, 2*time.Minute)
	if got := p.server.RemoteMultiaddr().String(); got != "/ip4/10.0.9.9/udp/4000/ipv8" {
		t.Fatalf("server sees the client at %s, want the new address", got)
	}
	moved := false
	for !moved {
		select {
		case ev := <-events:
			moved = ev.Change&transport.PathAddressChanged != 0
		default:
			t.Fatal("no PathAddressChanged event on the server")
		}
	}
	// The same session carried on: no second session was accepted.
	ctx, c2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer c2()
	if s, err := p.es.Accept(ctx); err == nil {
		t.Fatalf("a new session %v was set up after the address change", s.RemotePeer())
	}
	select {
	case <-p.server.Done():
		t.Fatal("server conn ended")
	default:
	}
}

// TestTwoSessionsShareBottleneckFairly runs two CUBIC senders into one
// server whose downlink is the bottleneck: each must get within 2× of a
// fair share.
func TestTwoSessionsShareBottleneckFairly(t *testing.T) {
	n := netsim.New(netsim.Config{Seed: 12})
	t.Cleanup(func() { n.Close() })
	server := n.NewHost(netip.MustParseAddr("10.0.0.2"), netsim.Link{Latency: 5 * time.Millisecond, Bandwidth: 6e6})
	pcS, _ := server.ListenUDP(5000)
	pcS.SetReadBuffer(16 << 20)
	es := plainsession.New(pcS, newKey(t), plainPayload)
	ms := New(Config{})
	t.Cleanup(func() { ms.Close(); es.Close() })

	var counts [2]atomic.Int64
	ctx := ctxT(t, 2*time.Minute)
	var clients [2]transport.Conn
	for i := range clients {
		h := n.NewHost(netip.AddrFrom4([4]byte{10, 0, 1, byte(i + 1)}), netsim.Link{Latency: 5 * time.Millisecond})
		pc, _ := h.ListenUDP(4000)
		ec := plainsession.New(pc, newKey(t), plainPayload)
		mc := New(Config{})
		t.Cleanup(func() { mc.Close(); ec.Close() })
		c, err := mc.NewConn(ec.Dial(pcS.LocalAddrPort(), nil), true)
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
		s, err := c.OpenStream(ctx, "/test/bulk/1")
		if err != nil {
			t.Fatal(err)
		}
		go io.Copy(s, newPattern(1<<40, uint64(i)))
		ss, err := es.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := ms.NewConn(ss, false)
		if err != nil {
			t.Fatal(err)
		}
		go func(i int) {
			st, err := sc.AcceptStream(ctx)
			if err != nil {
				return
			}
			buf := make([]byte, 64<<10)
			for {
				n, err := st.Read(buf)
				counts[i].Add(int64(n))
				if err != nil {
					return
				}
			}
		}(i)
	}
	// Measure after a warm-up, over a window long enough for CUBIC to
	// go through several loss epochs.
	time.Sleep(2 * time.Second)
	start := [2]int64{counts[0].Load(), counts[1].Load()}
	time.Sleep(4 * time.Second)
	var got [2]float64
	for i := range got {
		got[i] = float64(counts[i].Load() - start[i])
	}
	fair := (got[0] + got[1]) / 2
	t.Logf("shares over 4 s: %.2f MB and %.2f MB (fair %.2f MB; link 6 MB/s); cwnds %d, %d",
		got[0]/1e6, got[1]/1e6, fair/1e6, clients[0].Stats().CongestionWindow, clients[1].Stats().CongestionWindow)
	if fair < 0.5*6e6*4/2 {
		t.Fatalf("the two flows used only %.1f MB/s of a 6 MB/s link", 2*fair/4/1e6)
	}
	for i, g := range got {
		if g < fair/2 || g > 2*fair {
			t.Fatalf("flow %d got %.2f MB, outside 2× of the fair share %.2f MB", i, g/1e6, fair/1e6)
		}
	}
}

func TestPathChangesAreReportedToSubscribers(t *testing.T) {
	link := netsim.Link{Latency: 2 * time.Millisecond}
	sn := newSimNet(t, 13, link, link)
	p := connect(t, sn.pcC, sn.pcS, Config{}, Config{}, plainPayload)
	events, cancel := p.client.(transport.PathSubscriber).SubscribePathChanges()
	defer cancel()
	ctx := ctxT(t, time.Minute)
	// Keep request/response traffic going so the client measures the path.
	go func() {
		s, err := p.server.AcceptStream(ctx)
		if err != nil {
			return
		}
		io.Copy(s, s)
	}()
	s, _ := p.client.OpenStream(ctx, "/test/echo/1")
	go func() {
		buf := make([]byte, 1000)
		for ctx.Err() == nil {
			if _, err := s.Write(buf); err != nil {
				return
			}
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	wait := func(want transport.PathChange) transport.PathEvent {
		t.Helper()
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatal("subscription closed")
				}
				if ev.Change&want != 0 {
					return ev
				}
			case <-ctx.Done():
				t.Fatalf("no %v event", want)
			}
		}
	}
	time.Sleep(500 * time.Millisecond) // a baseline RTT
	base := p.client.Stats().SmoothedRTT
	sn.server.SetLink(netsim.Link{Latency: 40 * time.Millisecond})
	ev := wait(transport.PathRTTChanged)
	if ev.Stats.SmoothedRTT < base*5/4 {
		t.Fatalf("RTT event with srtt %v (baseline %v)", ev.Stats.SmoothedRTT, base)
	}
	sn.server.SetLink(netsim.Link{Latency: 40 * time.Millisecond, Loss: 0.4})
	ev = wait(transport.PathLossSpike)
	if ev.Stats.PacketsLost == 0 {
		t.Fatalf("loss event with no loss counted: %+v", ev.Stats)
	}
	cancel()
	if _, ok := <-events; ok {
		for range events {
		}
	}
}

// relayedSession is a memSession whose path goes through a relay.
type relayedSession struct{ *memSession }

func (relayedSession) PathKind() transport.PathKind { return transport.PathRelayed }

func TestStatsReportRelayedPathFromSession(t *testing.T) {
	a, b := memPair(newKey(t), newKey(t))
	m := New(Config{})
	defer m.Close()
	relayed, _ := m.NewConn(relayedSession{a}, true)
	direct, _ := m.NewConn(b, false)
	if got := relayed.Stats().Path; got != transport.PathRelayed {
		t.Fatalf("relayed session reported as %v", got)
	}
	if got := direct.Stats().Path; got != transport.PathDirect {
		t.Fatalf("plain session reported as %v", got)
	}
}
