package stun

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/internal/netsim"
	"github.com/ipv8/go-ipv8/nat"
	"github.com/ipv8/go-ipv8/nat/internal/pcport"
	"github.com/ipv8/go-ipv8/transport"
)

// fast is the transaction timing on netsim (a few ms of latency).
var fast = Timing{RTO: 40 * time.Millisecond, Timeout: 400 * time.Millisecond}

var (
	srvIP1 = netip.MustParseAddr("203.0.113.1")
	srvIP2 = netip.MustParseAddr("203.0.113.2")
	natIP  = netip.MustParseAddr("198.51.100.7")
	pubIP  = netip.MustParseAddr("198.51.100.50")
	inIP   = netip.MustParseAddr("10.0.0.2")
)

// startServer runs an RFC 5780 server on two netsim hosts (primary
// 203.0.113.1:3478, alternate 203.0.113.2:3479), or on one address when
// alt is false.
func startServer(t *testing.T, n *netsim.Network, alt bool) ServerConfig {
	t.Helper()
	l := netsim.Link{Latency: 2 * time.Millisecond}
	h1, h2 := n.NewHost(srvIP1, l), n.NewHost(srvIP2, l)
	cfg := ServerConfig{Primary: netip.AddrPortFrom(srvIP1, 3478)}
	if alt {
		cfg.Alternate = netip.AddrPortFrom(srvIP2, 3479)
	}
	conns := map[netip.AddrPort]transport.PacketConn{}
	for _, a := range mustSockets(t, cfg) {
		h := h1
		if a.Addr() == srvIP2 {
			h = h2
		}
		c, err := h.ListenUDP(a.Port())
		if err != nil {
			t.Fatal(err)
		}
		conns[a] = c
	}
	s, err := NewServer(cfg, conns)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return cfg
}

func mustSockets(t *testing.T, cfg ServerConfig) []netip.AddrPort {
	a, err := cfg.sockets()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// endpointOn attaches an Endpoint to a fresh port of host h.
func endpointOn(t *testing.T, h *netsim.Host, port uint16) *Endpoint {
	t.Helper()
	c, err := h.ListenUDP(port)
	if err != nil {
		t.Fatal(err)
	}
	p := pcport.New(c)
	e := Attach(p, EndpointConfig{})
	t.Cleanup(func() { e.Close(); p.Close() })
	return e
}

func TestDetectClassifiesEveryNATBehaviour(t *testing.T) {
	EI, AD, APD := netsim.EndpointIndependent, netsim.AddressDependent, netsim.AddressAndPortDependent
	cases := []struct {
		name                  string
		mapping, filtering    netsim.Behavior
		alloc                 netsim.PortAllocation
		wantMapping, wantFilt nat.Behavior
		classic               string
	}{
		{"full cone", EI, EI, netsim.PortPreserve, nat.EndpointIndependent, nat.EndpointIndependent, "full cone"},
		{"restricted cone", EI, AD, netsim.PortPreserve, nat.EndpointIndependent, nat.AddressDependent, "restricted cone"},
		{"port-restricted cone", EI, APD, netsim.PortPreserve, nat.EndpointIndependent, nat.AddressAndPortDependent, "port-restricted cone"},
		{"address-dependent mapping", AD, APD, netsim.PortRandom, nat.AddressDependent, nat.AddressAndPortDependent, "symmetric"},
		{"symmetric", APD, APD, netsim.PortRandom, nat.AddressAndPortDependent, nat.AddressAndPortDependent, "symmetric"},
		{"symmetric sequential", APD, APD, netsim.PortSequential, nat.AddressAndPortDependent, nat.AddressAndPortDependent, "symmetric"},
		{"address-dependent mapping, open filter", AD, EI, netsim.PortSequential, nat.AddressDependent, nat.EndpointIndependent, "symmetric"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			n := netsim.New(netsim.Config{Seed: uint64(i + 1)})
			defer n.Close()
			srv := startServer(t, n, true)
			box := n.NewNAT(natIP, netsim.NATConfig{Mapping: c.mapping, Filtering: c.filtering, PortAllocation: c.alloc}, netsim.Link{Latency: time.Millisecond})
			e := endpointOn(t, box.NewHost(inIP, netsim.Link{}), 4242)
			rep, err := e.Detect(context.Background(), DetectConfig{Servers: []netip.AddrPort{srv.Primary}, Timing: fast})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Mapping != c.wantMapping || rep.Filtering != c.wantFilt {
				t.Fatalf("got mapping %s (%s), filtering %s (%s); want %s, %s", rep.Mapping, rep.MappingReason, rep.Filtering, rep.FilteringReason, c.wantMapping, c.wantFilt)
			}
			if rep.NoNAT {
				t.Error("NoNAT behind a NAT")
			}
			if len(rep.Public) == 0 || rep.Public[0].Addr() != natIP {
				t.Errorf("public address %v, want the NAT's %s", rep.Public, natIP)
			}
			if got := nat.Classic(rep.NoNAT, rep.Mapping, rep.Filtering); got != c.classic {
				t.Errorf("classic name %q, want %q", got, c.classic)
			}
		})
	}
}

func TestDetectSeesNoNATOnPublicHost(t *testing.T) {
	n := netsim.New(netsim.Config{Seed: 9})
	defer n.Close()
	srv := startServer(t, n, true)
	e := endpointOn(t, n.NewHost(pubIP, netsim.Link{Latency: time.Millisecond}), 5000)
	rep, err := e.Detect(context.Background(), DetectConfig{Servers: []netip.AddrPort{srv.Primary}, Timing: fast})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.NoNAT || rep.Mapping != nat.EndpointIndependent || rep.Filtering != nat.EndpointIndependent {
		t.Fatalf("public host: NoNAT %v mapping %s filtering %s", rep.NoNAT, rep.Mapping, rep.Filtering)
	}
	if rep.Public[0] != netip.AddrPortFrom(pubIP, 5000) {
		t.Errorf("public %v", rep.Public)
	}
	if rep.Hairpinning != nat.TriYes {
		t.Errorf("a public host reaches itself; hairpinning %s", rep.Hairpinning)
	}
}

func TestDetectHairpinning(t *testing.T) {
	for _, hp := range []bool{true, false} {
		n := netsim.New(netsim.Config{Seed: 3})
		srv := startServer(t, n, true)
		box := n.NewNAT(natIP, netsim.NATConfig{Mapping: netsim.EndpointIndependent, Filtering: netsim.EndpointIndependent, Hairpinning: hp}, netsim.Link{})
		e := endpointOn(t, box.NewHost(inIP, netsim.Link{}), 4242)
		rep, err := e.Detect(context.Background(), DetectConfig{Servers: []netip.AddrPort{srv.Primary}, Timing: fast})
		n.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := map[bool]nat.Tristate{true: nat.TriYes, false: nat.TriNo}[hp]
		if rep.Hairpinning != want {
			t.Errorf("NAT hairpinning %v: detected %s", hp, rep.Hairpinning)
		}
	}
}

// A server with one address (as every go-ipv8 host is) answers
// CHANGE-REQUEST with 420, and the filtering verdict is unknown with that
// reason rather than a guess.
func TestDetectFilteringUnknownWithoutChangeRequest(t *testing.T) {
	n := netsim.New(netsim.Config{Seed: 4})
	defer n.Close()
	srv := startServer(t, n, false)
	box := n.NewNAT(natIP, netsim.NATConfig{}, netsim.Link{})
	e := endpointOn(t, box.NewHost(inIP, netsim.Link{}), 4242)
	rep, err := e.Detect(context.Background(), DetectConfig{Servers: []netip.AddrPort{srv.Primary}, Timing: fast})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Filtering != nat.Unknown || rep.Mapping != nat.Unknown {
		t.Fatalf("mapping %s filtering %s, want unknown", rep.Mapping, rep.Filtering)
	}
	if !strings.Contains(rep.FilteringReason, "RFC 5780") {
		t.Errorf("filtering reason %q does not say why", rep.FilteringReason)
	}
}

// Peers serve as each other's STUN servers: an Endpoint answers Binding
// requests with the address it saw, answers CHANGE-REQUEST with 420, and
// two peers at different addresses tell an endpoint-independent mapping.
func TestPeersServeEachOtherAndRejectChangeRequest(t *testing.T) {
	n := netsim.New(netsim.Config{Seed: 5})
	defer n.Close()
	p1 := endpointOn(t, n.NewHost(srvIP1, netsim.Link{}), 7000)
	p2 := endpointOn(t, n.NewHost(srvIP2, netsim.Link{}), 7001)
	box := n.NewNAT(natIP, netsim.NATConfig{Mapping: netsim.EndpointIndependent}, netsim.Link{})
	e := endpointOn(t, box.NewHost(inIP, netsim.Link{}), 4242)
	ctx := context.Background()

	r, from, err := e.Binding(ctx, p1.LocalAddr(), Request{}, fast)
	if err != nil {
		t.Fatal(err)
	}
	if from != p1.LocalAddr() || r.Mapped.Addr() != natIP || r.Error != 0 {
		t.Fatalf("response %+v from %s", r, from)
	}
	r, _, err = e.Binding(ctx, p1.LocalAddr(), Request{Change: ChangeIP}, fast)
	if err != nil {
		t.Fatal(err)
	}
	if r.Error != 420 || len(r.Unknown) != 1 || r.Unknown[0] != attrChangeRequest {
		t.Fatalf("CHANGE-REQUEST to a one-address peer: %+v, want 420 listing 0x0003", r)
	}
	rep, err := e.Detect(ctx, DetectConfig{Servers: []netip.AddrPort{p1.LocalAddr(), p2.LocalAddr()}, Timing: fast})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mapping != nat.EndpointIndependent || rep.Filtering != nat.Unknown || len(rep.Public) != 1 {
		t.Fatalf("two plain peers: mapping %s (%s) filtering %s public %v", rep.Mapping, rep.MappingReason, rep.Filtering, rep.Public)
	}
}

func TestDetectFailsWhenNoServerAnswers(t *testing.T) {
	n := netsim.New(netsim.Config{Seed: 6})
	defer n.Close()
	e := endpointOn(t, n.NewHost(pubIP, netsim.Link{}), 5000)
	_, err := e.Detect(context.Background(), DetectConfig{Servers: []netip.AddrPort{netip.MustParseAddrPort("203.0.113.99:3478")}, Timing: fast})
	if err == nil || !strings.Contains(err.Error(), "no STUN server") {
		t.Fatalf("err %v, want ErrNoServer", err)
	}
}

// RESPONSE-PORT sends the answer to another port of the request's IP
// address: what the lifetime probes use.
func TestServerHonoursResponsePort(t *testing.T) {
	n := netsim.New(netsim.Config{Seed: 7})
	defer n.Close()
	srv := startServer(t, n, true)
	h := n.NewHost(pubIP, netsim.Link{})
	asker := endpointOn(t, h, 6000)
	target := endpointOn(t, h, 6001)
	got := make(chan received, 1)
	req := Request{TxID: NewTxID(), ResponsePort: 6001}
	target.mu.Lock()
	target.pending[req.TxID] = got
	target.mu.Unlock()
	if err := asker.port.WriteTo(req.Append(nil), srv.Primary); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if r.resp.Mapped != netip.AddrPortFrom(pubIP, 6000) || r.from != srv.Primary {
			t.Fatalf("response %+v from %s", r.resp, r.from)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no response at the RESPONSE-PORT")
	}
}
