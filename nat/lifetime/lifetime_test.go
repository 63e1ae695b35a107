package lifetime

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/internal/clock"
	"github.com/ipv8/go-ipv8/internal/netsim"
	"github.com/ipv8/go-ipv8/nat"
	"github.com/ipv8/go-ipv8/nat/internal/pcport"
	"github.com/ipv8/go-ipv8/nat/stun"
	"github.com/ipv8/go-ipv8/transport"
)

func TestNarrowKeepsTheShortestDeathAndLongestLifeBelowIt(t *testing.T) {
	s := time.Second
	alive, dead := narrow(0, 0, map[time.Duration]bool{5 * s: true, 10 * s: true, 15 * s: false, 20 * s: true})
	if alive != 10*s || dead != 15*s {
		t.Fatalf("bracket [%s, %s], want [10s, 15s]", alive, dead)
	}
	alive, dead = narrow(alive, dead, map[time.Duration]bool{11 * s: true, 12 * s: false})
	if alive != 11*s || dead != 12*s {
		t.Fatalf("bracket [%s, %s], want [11s, 12s]", alive, dead)
	}
}

func TestRoundsCoverTheBracket(t *testing.T) {
	f := firstRound(4*time.Second, 300*time.Second)
	if f[0] != 4*time.Second || f[len(f)-1] != 300*time.Second {
		t.Fatalf("first round %v", f)
	}
	for i := 1; i < len(f); i++ {
		if f[i] <= f[i-1] {
			t.Fatalf("first round not increasing: %v", f)
		}
	}
	n := nextRound(20*time.Second, 30*time.Second, 4)
	want := []time.Duration{22 * time.Second, 24 * time.Second, 26 * time.Second, 28 * time.Second}
	if len(n) != len(want) {
		t.Fatalf("next round %v, want %v", n, want)
	}
	for i := range n {
		if n[i] != want[i] {
			t.Fatalf("next round %v, want %v", n, want)
		}
	}
}

// gate keeps a virtual-time test from running ahead of the measuring
// goroutine: virtual time must not advance between the moment a round's
// mappings are all open and the moment Measure has scheduled their probes
// (the real goroutine may be slow under -race; the virtual clock would
// not wait for it).
type gate struct {
	clock.Clock
	mu                         sync.Mutex
	started, settled, schedule int
}

func (g *gate) AfterFunc(d time.Duration, f func()) clock.Timer {
	g.mu.Lock()
	g.schedule++
	g.mu.Unlock()
	return g.Clock.AfterFunc(d, f)
}

func (g *gate) mayAdvance() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.started > g.settled || g.settled == g.schedule
}

type gatedProber struct {
	Prober
	g *gate
}

func (p gatedProber) Open(ctx context.Context) (Mapping, error) {
	p.g.mu.Lock()
	p.g.started++
	p.g.mu.Unlock()
	m, err := p.Prober.Open(ctx)
	p.g.mu.Lock()
	p.g.settled++
	if err != nil {
		p.g.schedule++ // no probe will be scheduled for it
	}
	p.g.mu.Unlock()
	return m, err
}

// measureOnNetsim runs Measure on a virtual-time network: a STUN-answering
// host on the internet, a client behind a NAT with the given idle timeout.
func measureOnNetsim(t *testing.T, natCfg netsim.NATConfig, cfg Config) Result {
	t.Helper()
	n := netsim.New(netsim.Config{Seed: 11, Virtual: true})
	defer n.Close()
	srvHost := n.NewHost(netip.MustParseAddr("203.0.113.1"), netsim.Link{Latency: 10 * time.Millisecond})
	sc, err := srvHost.ListenUDP(3478)
	if err != nil {
		t.Fatal(err)
	}
	sp := pcport.New(sc)
	srv := stun.Attach(sp, stun.EndpointConfig{Clock: n.Clock()})
	defer srv.Close()
	box := n.NewNAT(netip.MustParseAddr("198.51.100.7"), natCfg, netsim.Link{Latency: 5 * time.Millisecond})
	client := box.NewHost(netip.MustParseAddr("10.0.0.2"), netsim.Link{})
	p := &STUNProber{
		Server: netip.MustParseAddrPort("203.0.113.1:3478"),
		Listen: func() (transport.PacketConn, error) { return client.ListenUDP(0) },
		Clock:  n.Clock(),
	}
	defer p.Close()
	g := &gate{Clock: n.Clock()}
	cfg.Clock = g
	type out struct {
		r   Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := Measure(context.Background(), gatedProber{p, g}, cfg)
		done <- out{r, err}
	}()
	for limit := 0; limit < 1e6; limit++ {
		select {
		case o := <-done:
			if o.err != nil {
				t.Fatal(o.err)
			}
			return o.r
		default:
		}
		if g.mayAdvance() {
			n.RunFor(50 * time.Millisecond)
		}
		time.Sleep(50 * time.Microsecond) // let the measuring goroutine run
	}
	t.Fatal("Measure did not finish")
	return Result{}
}

func TestMeasureFindsTheNATTimeout(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  netsim.NATConfig
	}{
		{"10s port-restricted", netsim.NATConfig{MappingTimeout: 10 * time.Second}},
		{"30s symmetric", netsim.NATConfig{MappingTimeout: 30 * time.Second, Mapping: netsim.AddressAndPortDependent, PortAllocation: netsim.PortRandom}},
		// Inbound refresh must not matter: the probe is the mapping's first inbound packet since Open.
		{"45s full cone, inbound refresh", netsim.NATConfig{MappingTimeout: 45 * time.Second, Filtering: netsim.EndpointIndependent, InboundRefresh: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := measureOnNetsim(t, c.cfg, Config{})
			want := c.cfg.MappingTimeout
			if r.Alive > want || r.Dead < want {
				t.Errorf("bracket %s does not hold the NAT's %s", r, want)
			}
			if e := r.Estimate(); e < want*9/10 || e > want*11/10 {
				t.Errorf("estimate %s, want %s ±10 %%", e, want)
			}
			if k := r.Keepalive(); k >= want || k != nat.KeepaliveInterval(r.Alive) {
				t.Errorf("keepalive %s for a %s NAT", k, want)
			}
		})
	}
}

func TestMeasureReportsMappingsThatOutliveMax(t *testing.T) {
	r := measureOnNetsim(t, netsim.NATConfig{MappingTimeout: 10 * time.Minute}, Config{Max: time.Minute})
	if r.Dead != 0 || r.Alive != time.Minute || r.Rounds != 1 {
		t.Fatalf("result %+v, want alive at Max (1m) and no death after one round", r)
	}
	if r.String() != "more than 1m0s" {
		t.Errorf("String %q", r.String())
	}
}

// A server that ignores RESPONSE-PORT answers the probe to the asking
// socket, so even a fresh mapping looks gone: Measure must say so instead
// of reporting a lifetime of zero.
func TestMeasureRejectsAServerWithoutResponsePort(t *testing.T) {
	n := netsim.New(netsim.Config{Seed: 2, Virtual: true})
	defer n.Close()
	srvHost := n.NewHost(netip.MustParseAddr("203.0.113.1"), netsim.Link{Latency: 10 * time.Millisecond})
	sc, err := srvHost.ListenUDP(3478)
	if err != nil {
		t.Fatal(err)
	}
	// A plain STUN server: answers every Binding request to its source.
	pcport.Receive(sc, func(pkt []byte, from netip.AddrPort) {
		req, err := stun.ParseRequest(pkt)
		if err != nil {
			return
		}
		resp := plainAnswer(req.TxID, from)
		sc.WriteToUDPAddrPort(resp, from)
	})
	client := n.NewHost(netip.MustParseAddr("198.51.100.9"), netsim.Link{})
	p := &STUNProber{Server: netip.MustParseAddrPort("203.0.113.1:3478"), Clock: n.Clock(),
		Listen: func() (transport.PacketConn, error) { return client.ListenUDP(0) }}
	defer p.Close()
	done := make(chan error, 1)
	go func() { _, err := Measure(context.Background(), p, Config{Clock: n.Clock()}); done <- err }()
	for {
		select {
		case err := <-done:
			if !errors.Is(err, ErrProbeFailed) {
				t.Fatalf("err %v, want ErrProbeFailed", err)
			}
			return
		default:
		}
		n.RunFor(50 * time.Millisecond)
		time.Sleep(50 * time.Microsecond)
	}
}

// plainAnswer is a Binding success response with XOR-MAPPED-ADDRESS for
// an IPv4 source, as a server that knows nothing of RFC 5780 sends.
func plainAnswer(txid [12]byte, from netip.AddrPort) []byte {
	b := []byte{0x01, 0x01, 0, 12, 0x21, 0x12, 0xA4, 0x42}
	b = append(b, txid[:]...)
	ip := from.Addr().As4()
	port := from.Port() ^ 0x2112
	return append(b, 0, 0x20, 0, 8, 0, 1, byte(port>>8), byte(port), ip[0]^0x21, ip[1]^0x12, ip[2]^0xA4, ip[3]^0x42)
}
