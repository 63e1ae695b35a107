package punch

import (
	"context"
	"crypto/rand"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/internal/netsim"
	"github.com/ipv8/go-ipv8/nat"
	"github.com/ipv8/go-ipv8/nat/relay"
	"github.com/ipv8/go-ipv8/nat/stun"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
	"github.com/ipv8/go-ipv8/transport/udp"
)

// world is a netsim internet with a relay, two STUN hosts (two ports
// each) and clients behind NATs of chosen behaviours.
type world struct {
	t       testing.TB
	n       *netsim.Network
	relay   *relay.Endpoint
	relayAt netip.AddrPort
	stuns   []netip.AddrPort
	nextIP  byte
}

var lanLink = netsim.Link{Latency: time.Millisecond}
var wanLink = netsim.Link{Latency: 2 * time.Millisecond}

func newWorld(t testing.TB) *world {
	n := netsim.New(netsim.Config{Seed: 42})
	t.Cleanup(func() { n.Close() })
	w := &world{t: t, n: n, nextIP: 10}
	rh := n.NewHost(netip.MustParseAddr("192.0.2.1"), wanLink)
	rp := w.port(rh, 4000)
	stun.Attach(rp, stun.EndpointConfig{})
	ep, err := relay.New(rp, newKey(t), relay.Config{Serve: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	w.relay, w.relayAt = ep, rp.LocalAddr()
	for _, ip := range []string{"192.0.2.2", "192.0.2.3"} {
		h := n.NewHost(netip.MustParseAddr(ip), wanLink)
		for _, port := range []uint16{3478, 3479} {
			p := w.port(h, port)
			stun.Attach(p, stun.EndpointConfig{AnswerRate: 100000})
			w.stuns = append(w.stuns, p.LocalAddr())
		}
	}
	return w
}

func newKey(t testing.TB) *peer.PrivateKey {
	k, err := peer.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (w *world) port(h *netsim.Host, n uint16) *udp.Port {
	c, err := h.ListenUDP(n)
	if err != nil {
		w.t.Fatal(err)
	}
	p := udp.NewPort(c, udp.Config{})
	w.t.Cleanup(func() { p.Close() })
	return p
}

// kind is a NAT behaviour for a client.
type kind struct {
	name    string
	open    bool
	cfg     netsim.NATConfig
	filters nat.Behavior // what detection would report
}

var (
	kOpen = kind{name: "open", open: true, filters: nat.EndpointIndependent}
	kFC   = kind{"fullcone", false, netsim.NATConfig{Mapping: netsim.EndpointIndependent, Filtering: netsim.EndpointIndependent}, nat.EndpointIndependent}
	kARC  = kind{"addrrestricted", false, netsim.NATConfig{Mapping: netsim.EndpointIndependent, Filtering: netsim.AddressDependent}, nat.AddressDependent}
	kPRC  = kind{"portrestricted", false, netsim.NATConfig{Mapping: netsim.EndpointIndependent, Filtering: netsim.AddressAndPortDependent}, nat.AddressAndPortDependent}
	kADM  = kind{"addrdependent", false, netsim.NATConfig{Mapping: netsim.AddressDependent, Filtering: netsim.AddressAndPortDependent, PortAllocation: netsim.PortRandom}, nat.AddressAndPortDependent}
	kSym  = kind{"symmetric", false, netsim.NATConfig{Mapping: netsim.AddressAndPortDependent, Filtering: netsim.AddressAndPortDependent, PortAllocation: netsim.PortRandom}, nat.AddressAndPortDependent}
	kSeq  = kind{"sequential", false, netsim.NATConfig{Mapping: netsim.AddressAndPortDependent, Filtering: netsim.AddressAndPortDependent, PortAllocation: netsim.PortSequential}, nat.AddressAndPortDependent}
)

// client is a host with a port, a STUN endpoint, a relay client and a
// Puncher.
type client struct {
	key   *peer.PrivateKey
	host  *netsim.Host
	port  *udp.Port
	relay *relay.Endpoint
	p     *Puncher
}

func (w *world) client(k kind, budget Budget) *client {
	w.nextIP++
	var h *netsim.Host
	if k.open {
		h = w.n.NewHost(netip.AddrFrom4([4]byte{192, 0, 2, w.nextIP}), wanLink)
	} else {
		cfg := k.cfg
		cfg.MappingTimeout = time.Minute
		nt := w.n.NewNAT(netip.AddrFrom4([4]byte{198, 51, 100, w.nextIP}), cfg, wanLink)
		h = nt.NewHost(netip.MustParseAddr("10.0.0.2"), lanLink)
	}
	c := &client{key: newKey(w.t), host: h}
	c.port = w.port(h, 5000)
	se := stun.Attach(c.port, stun.EndpointConfig{})
	ep, err := relay.New(c.port, c.key, relay.Config{})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { ep.Close() })
	c.relay = ep
	servers := w.stuns
	c.p, err = New(c.port, Config{
		Budget: budget,
		Self: func(ctx context.Context) (Info, error) {
			return Observe(ctx, se, servers, k.filters)
		},
		ListenAux: func(n int) ([]transport.PacketConn, error) {
			out := make([]transport.PacketConn, 0, n)
			for range n {
				c, err := h.ListenUDP(0)
				if err != nil {
					return nil, err
				}
				out = append(out, c)
			}
			return out, nil
		},
	})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { c.p.Close() })
	return c
}

// circuit links a and b through the relay and routes punch packets that
// cross it to the Punchers.
func (w *world) circuit(a, b *client) (*relay.Circuit, *relay.Circuit) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.relay.Reserve(ctx, w.relayAt); err != nil {
		w.t.Fatal(err)
	}
	ca, err := a.relay.Connect(ctx, w.relayAt, b.key.ID())
	if err != nil {
		w.t.Fatal(err)
	}
	cb, err := b.relay.Accept(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	route := func(c *relay.Circuit, p *Puncher) {
		c.SetHandler(func(pkt []byte) {
			if len(pkt) > 0 && pkt[0] == transport.TypePunch {
				p.HandleSignal(pkt, c)
			}
		})
	}
	route(ca, a.p)
	route(cb, b.p)
	return ca, cb
}

// punchPair punches between fresh clients of kinds ka (initiator) and kb.
func punchPair(t *testing.T, w *world, ka, kb kind, budget Budget, opts ...Option) (*Result, *Result) {
	a, b := w.client(ka, budget), w.client(kb, budget)
	ca, _ := w.circuit(a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ra, err := a.p.Initiate(ctx, ca, opts...)
	if err != nil {
		t.Fatalf("%s→%s: Initiate: %v", ka.name, kb.name, err)
	}
	rb, err := b.p.Accept(ctx)
	if err != nil {
		t.Fatalf("%s→%s: responder: %v", ka.name, kb.name, err)
	}
	return ra, rb
}

func TestChoosePicksTheStrategyForEachPair(t *testing.T) {
	eim := func(f nat.Behavior) Traits {
		return Traits{Mapping: nat.EndpointIndependent, Filtering: f, Alloc: AllocPreserve}
	}
	adm := Traits{Mapping: nat.AddressDependent, Filtering: nat.AddressAndPortDependent, Alloc: AllocRandom}
	sym := Traits{Mapping: nat.AddressAndPortDependent, Filtering: nat.AddressAndPortDependent, Alloc: AllocRandom}
	seq := Traits{Mapping: nat.AddressAndPortDependent, Filtering: nat.AddressAndPortDependent, Alloc: AllocSequential, Step: 1, LastPort: 20000}
	open := Traits{NoNAT: true, Filtering: nat.EndpointIndependent}
	prc, arc, fc := eim(nat.AddressAndPortDependent), eim(nat.AddressDependent), eim(nat.EndpointIndependent)
	for _, tc := range []struct {
		name string
		a, b Traits
		want Strategy
		hard uint8
	}{
		{"open-sym", open, sym, Direct, 0},
		{"prc-prc", prc, prc, Direct, 0},
		{"fc-sym", fc, sym, Direct, 0},
		{"arc-adm", arc, adm, Direct, 0},
		{"sym-arc", sym, arc, Direct, 0},
		{"prc-seq", prc, seq, Predict, HardResponder},
		{"seq-prc", seq, prc, Predict, HardInitiator},
		{"seq-seq", seq, seq, Predict, HardInitiator | HardResponder},
		{"prc-sym", prc, sym, Birthday, HardResponder},
		{"adm-prc", adm, prc, Birthday, HardInitiator},
		{"sym-sym", sym, sym, None, 0},
		{"adm-sym", adm, sym, None, 0},
		{"seq-sym", seq, sym, None, 0},
		{"unknown-prc", Traits{}, prc, Direct, 0},
	} {
		p := Choose(tc.a, tc.b, Budget{})
		if p.Strategy != tc.want || p.Hard != tc.hard {
			t.Errorf("%s: %s hard %b, want %s hard %b", tc.name, p.Strategy, p.Hard, tc.want, tc.hard)
		}
		if p.Strategy == Birthday && (p.Probes != 1024 || p.Sockets != 256) {
			t.Errorf("%s: birthday budget %d probes, %d sockets", tc.name, p.Probes, p.Sockets)
		}
	}
}

// Each strategy opens a path on netsim's NATs, and both sides end with the
// same pair of addresses.
func TestPunchOnNetsimNATs(t *testing.T) {
	// A large birthday budget makes the unit test deterministic enough
	// (the lab measures the real 1024-probe rate).
	budget := Budget{BirthdayProbes: 6000, Duration: 4 * time.Second}
	for _, tc := range []struct {
		a, b kind
		want Strategy
	}{
		{kOpen, kPRC, Direct},
		{kPRC, kPRC, Direct},
		{kFC, kSym, Direct},
		{kSym, kARC, Direct},
		{kPRC, kSeq, Predict},
		{kSeq, kPRC, Predict},
		{kSeq, kSeq, Predict},
		{kPRC, kSym, Birthday},
		{kADM, kPRC, Birthday},
	} {
		t.Run(tc.a.name+"-"+tc.b.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			ra, rb := punchPair(t, w, tc.a, tc.b, budget)
			if ra.Strategy != tc.want {
				t.Fatalf("strategy %s, want %s (traits %s / %s)", ra.Strategy, tc.want, describe(ra.Self.Traits), describe(ra.Peer.Traits))
			}
			if ra.Err != nil || rb.Err != nil {
				t.Fatalf("initiator %v; responder %v", ra, rb)
			}
			// Both ends agree: each sends to where the other's socket is seen.
			if ra.Path.Addr().Addr() != rb.Self.Candidates[0].Addr() || rb.Path.Addr().Addr() != ra.Self.Candidates[0].Addr() {
				t.Fatalf("paths %s and %s, public addresses %s and %s", ra.Path.Addr(), rb.Path.Addr(), ra.Self.Candidates[0], rb.Self.Candidates[0])
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := ra.Path.Ping(ctx); err != nil {
				t.Fatalf("initiator's path does not answer: %v", err)
			}
			if _, err := rb.Path.Ping(ctx); err != nil {
				t.Fatalf("responder's path does not answer: %v", err)
			}
			t.Logf("%s; %s", ra, rb)
		})
	}
}

// Pairs that cannot punch say so quickly, and send nothing direct.
func TestHardPairsFallBackToTheRelay(t *testing.T) {
	w := newWorld(t)
	ra, rb := punchPair(t, w, kSym, kSym, Budget{})
	if ra.Strategy != None || !errors.Is(ra.Err, ErrNoPath) || !errors.Is(rb.Err, ErrNoPath) {
		t.Fatalf("sym-sym: %v / %v", ra, rb)
	}
	if ra.Probes != 0 || rb.Probes != 0 {
		t.Fatalf("probes sent for a plan of None: %d, %d", ra.Probes, rb.Probes)
	}
}

// A forced birthday attempt between two random-port symmetric NATs is
// tried within its budget and fails (the planner is right to skip it).
func TestForcedBirthdayBetweenSymmetricNATsStaysWithinBudget(t *testing.T) {
	w := newWorld(t)
	budget := Budget{Duration: time.Second, BirthdayProbes: 300, BirthdaySockets: 32}
	plan := Choose(Traits{}, Traits{}, budget)
	plan.Strategy, plan.Hard, plan.Probes, plan.Sockets = Birthday, HardResponder, 300, 32
	ra, rb := punchPair(t, w, kSym, kSym, budget, WithPlan(plan))
	if ra.Err == nil && rb.Err == nil {
		t.Logf("a lucky punch: %v / %v", ra, rb)
	}
	// The easy side sends its 300 random probes plus a few per round to
	// known addresses; the hard side its 32 sockets' probes every 200 ms.
	if ra.Probes > 300+2*50 || rb.Probes > 32*6+50 {
		t.Fatalf("over budget: %d and %d probes", ra.Probes, rb.Probes)
	}
	t.Logf("%v / %v", ra, rb)
}

func TestAllocationNeedsThreeStepsToBeSequential(t *testing.T) {
	for _, tc := range []struct {
		ports []uint16
		want  Alloc
		last  uint16
	}{
		{[]uint16{20001, 20002, 20003, 20004}, AllocSequential, 20004},
		{[]uint16{30000, 29998, 29996}, AllocSequential, 29996},
		{[]uint16{20001, 20002}, AllocRandom, 0}, // two could be so by chance
		{[]uint16{20001, 20002, 20004}, AllocRandom, 0},
		{[]uint16{5000, 61000, 33000}, AllocRandom, 0},
		{[]uint16{4000}, AllocUnknown, 0},
	} {
		a, _, last := allocation(tc.ports)
		if a != tc.want || last != tc.last {
			t.Errorf("%v: %s last %d, want %s last %d", tc.ports, a, last, tc.want, tc.last)
		}
	}
}
