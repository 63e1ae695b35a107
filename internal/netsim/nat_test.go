package netsim

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

var (
	natIP  = netip.MustParseAddr("198.51.100.1")
	privX  = netip.MustParseAddr("10.0.0.2")
	privY  = netip.MustParseAddr("10.0.0.3")
	srv1IP = netip.MustParseAddr("192.0.2.10")
	srv2IP = netip.MustParseAddr("192.0.2.11")
)

// natLab is a NAT with one inside host X (port 5000) and two public
// servers: S1 listening on 3478 and 3479, S2 on 3478. Every server conn
// records what reaches it, and so does X.
type natLab struct {
	n            *Network
	nat          *NAT
	x            *Conn
	s1a, s1b, s2 *Conn
	rx           *recorder
	r1a, r1b, r2 *recorder
}

func newNATLab(t *testing.T, seed uint64, cfg NATConfig) *natLab {
	t.Helper()
	n := virtualNet(t, seed)
	l := &natLab{n: n, nat: n.NewNAT(natIP, cfg, Link{})}
	l.x = listen(t, l.nat.NewHost(privX, Link{}), 5000)
	s1, s2 := n.NewHost(srv1IP, Link{}), n.NewHost(srv2IP, Link{})
	l.s1a, l.s1b, l.s2 = listen(t, s1, 3478), listen(t, s1, 3479), listen(t, s2, 3478)
	clk := n.Clock()
	l.rx, l.r1a, l.r1b, l.r2 = record(l.x, clk), record(l.s1a, clk), record(l.s1b, clk), record(l.s2, clk)
	return l
}

// observed sends one packet from X to the server conn s and returns the
// source address the server saw.
func (l *natLab) observed(t *testing.T, s *Conn, r *recorder) netip.AddrPort {
	t.Helper()
	before := r.len()
	mustWrite(t, l.x, []byte("out"), s.LocalAddrPort())
	l.n.RunFor(time.Millisecond)
	p := r.all()
	if len(p) != before+1 {
		t.Fatalf("server %v did not get X's packet", s.LocalAddrPort())
	}
	return p[len(p)-1].from
}

// reaches reports whether a packet from server conn s to ext reaches X.
func (l *natLab) reaches(t *testing.T, s *Conn, ext netip.AddrPort) bool {
	t.Helper()
	before := l.rx.len()
	mustWrite(t, s, []byte("in"), ext)
	l.n.RunFor(time.Millisecond)
	return l.rx.len() == before+1
}

var behaviors = []Behavior{EndpointIndependent, AddressDependent, AddressAndPortDependent}

// Every mapping × filtering combination of RFC 4787.
func TestNATMappingAndFilteringBehaviours(t *testing.T) {
	for _, mb := range behaviors {
		for _, fb := range behaviors {
			t.Run(fmt.Sprintf("mapping=%v/filtering=%v", mb, fb), func(t *testing.T) {
				l := newNATLab(t, 1, NATConfig{Mapping: mb, Filtering: fb})

				// Filtering, with only the mapping towards S1:3478 open.
				e1 := l.observed(t, l.s1a, l.r1a)
				if e1.Addr() != natIP {
					t.Fatalf("source seen outside %v, want the NAT's address", e1)
				}
				fromSamePort := l.reaches(t, l.s1a, e1)
				fromOtherPort := l.reaches(t, l.s1b, e1)
				fromOtherIP := l.reaches(t, l.s2, e1)
				want := [3]bool{true, fb != AddressAndPortDependent, fb == EndpointIndependent}
				if got := [3]bool{fromSamePort, fromOtherPort, fromOtherIP}; got != want {
					t.Fatalf("inbound from S1:3478, S1:3479, S2:3478 passes %v, want %v", got, want)
				}
				filtered := uint64(0)
				for _, ok := range want {
					if !ok {
						filtered++
					}
				}
				if d := l.n.Stats().Dropped(DropNATFiltered); d != filtered {
					t.Fatalf("DropNATFiltered %d, want %d", d, filtered)
				}

				// Mapping: the external address used towards each destination.
				e2 := l.observed(t, l.s1b, l.r1b)
				e3 := l.observed(t, l.s2, l.r2)
				switch mb {
				case EndpointIndependent:
					if e2 != e1 || e3 != e1 {
						t.Fatalf("EIM used %v, %v, %v; want one mapping", e1, e2, e3)
					}
				case AddressDependent:
					if e2 != e1 || e3 == e1 {
						t.Fatalf("ADM used %v, %v (same IP), %v (other IP); want a mapping per IP", e1, e2, e3)
					}
				case AddressAndPortDependent:
					if e2 == e1 || e3 == e1 || e3 == e2 {
						t.Fatalf("APDM used %v, %v, %v; want a mapping per ip:port", e1, e2, e3)
					}
				}
				if got, ok := l.nat.ExternalAddr(netip.AddrPortFrom(privX, 5000), l.s2.LocalAddrPort()); !ok || got != e3 {
					t.Fatalf("ExternalAddr %v %v, want %v", got, ok, e3)
				}

				// Permissions belong to a mapping: X has now sent to S2, but
				// through e1 only if mapping is endpoint-independent.
				want2 := fb == EndpointIndependent || mb == EndpointIndependent && fb == AddressDependent ||
					mb == EndpointIndependent && fb == AddressAndPortDependent
				if got := l.reaches(t, l.s2, e1); got != want2 {
					t.Fatalf("after X sent to S2, S2 → e1 passes %v, want %v", got, want2)
				}
				// Replies to the address the server saw always pass.
				for _, c := range []struct {
					s   *Conn
					ext netip.AddrPort
				}{{l.s1a, e1}, {l.s1b, e2}, {l.s2, e3}} {
					if !l.reaches(t, c.s, c.ext) {
						t.Fatalf("reply from %v to %v dropped", c.s.LocalAddrPort(), c.ext)
					}
				}
			})
		}
	}
}

func TestNATMappingTimeout(t *testing.T) {
	type step struct {
		at  time.Duration
		out bool // X → S1; otherwise S1 → X's mapping, expected to pass or not
		ok  bool
	}
	cases := []struct {
		name           string
		inboundRefresh bool
		steps          []step
	}{
		{"idle mapping expires", false, []step{{0, true, true}, {20 * time.Second, false, true}, {30 * time.Second, false, false}}},
		{"inbound does not refresh", false, []step{{0, true, true}, {20 * time.Second, false, true}, {45 * time.Second, false, false}}},
		{"outbound refreshes", false, []step{{0, true, true}, {25 * time.Second, true, true}, {54 * time.Second, false, true}, {55 * time.Second, false, false}}},
		{"inbound refreshes when enabled", true, []step{{0, true, true}, {20 * time.Second, false, true}, {45 * time.Second, false, true}, {74 * time.Second, false, true}, {104 * time.Second, false, false}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newNATLab(t, 1, NATConfig{Filtering: EndpointIndependent, MappingTimeout: 30 * time.Second,
				InboundRefresh: tc.inboundRefresh, PortAllocation: PortSequential})
			var ext netip.AddrPort
			for _, s := range tc.steps {
				l.n.RunUntil(VirtualEpoch.Add(s.at))
				if s.out {
					ext = l.observed(t, l.s1a, l.r1a)
					continue
				}
				if got := l.reaches(t, l.s1a, ext); got != s.ok {
					t.Fatalf("at %v inbound passes %v, want %v", s.at, got, s.ok)
				}
			}
			if l.n.Stats().Dropped(DropNATNoMapping) != 1 {
				t.Fatalf("want one DropNATNoMapping: %v", l.n.Stats())
			}
			// A new outbound packet makes a new mapping, on a new port.
			if again := l.observed(t, l.s1a, l.r1a); again == ext {
				t.Fatalf("expired mapping's port %v reused by the sequential allocator", again)
			}
			if l.nat.Mappings() != 1 {
				t.Fatalf("%d live mappings, want 1", l.nat.Mappings())
			}
		})
	}
}

func TestNATNeverExpiresWithNegativeTimeout(t *testing.T) {
	l := newNATLab(t, 1, NATConfig{Filtering: EndpointIndependent, MappingTimeout: -1})
	ext := l.observed(t, l.s1a, l.r1a)
	l.n.RunFor(24 * time.Hour)
	if !l.reaches(t, l.s2, ext) {
		t.Fatal("mapping expired")
	}
}

// Mappings expire lazily; a sweep every so many new mappings keeps the
// stored ones within a small factor of the live ones.
func TestNATExpiredMappingsAreSwept(t *testing.T) {
	n := virtualNet(t, 1)
	nat := n.NewNAT(natIP, NATConfig{MappingTimeout: time.Second, Mapping: AddressAndPortDependent}, Link{})
	x := listen(t, nat.NewHost(privX, Link{}), 5000)
	const perRound, rounds = 200, 30
	for r := range rounds {
		for i := range perRound {
			mustWrite(t, x, []byte("x"), netip.AddrPortFrom(srv1IP, uint16(1000+r*perRound+i)))
		}
		n.RunFor(2 * time.Second)
	}
	nat.n.mu.Lock()
	stored := len(nat.maps)
	nat.n.mu.Unlock()
	if live := nat.Mappings(); live != 0 || stored > 3*perRound {
		t.Fatalf("%d mappings stored (%d live) after %d expired rounds of %d", stored, live, rounds, perRound)
	}
}

func TestNATPortAllocation(t *testing.T) {
	hosts := []netip.AddrPort{
		netip.MustParseAddrPort("10.0.0.2:5000"),
		netip.MustParseAddrPort("10.0.0.3:5000"),
		netip.MustParseAddrPort("10.0.0.2:5001"),
		netip.MustParseAddrPort("10.0.0.4:53"),
	}
	ports := func(seed uint64, pa PortAllocation) []uint16 {
		n := virtualNet(t, seed)
		nat := n.NewNAT(natIP, NATConfig{PortAllocation: pa}, Link{})
		srv := listen(t, n.NewHost(srv1IP, Link{}), 3478)
		rs := record(srv, n.Clock())
		byIP := map[netip.Addr]*Host{}
		for _, h := range hosts {
			if byIP[h.Addr()] == nil {
				byIP[h.Addr()] = nat.NewHost(h.Addr(), Link{})
			}
			mustWrite(t, listen(t, byIP[h.Addr()], h.Port()), []byte("x"), srv.LocalAddrPort())
			n.RunFor(time.Millisecond)
		}
		var out []uint16
		for _, p := range rs.all() {
			out = append(out, p.from.Port())
		}
		return out
	}
	if got, want := ports(1, PortPreserve), []uint16{5000, 5001, 5002, 1024}; !slices.Equal(got, want) {
		t.Fatalf("preserve: %v, want %v", got, want)
	}
	if got, want := ports(1, PortSequential), []uint16{20000, 20001, 20002, 20003}; !slices.Equal(got, want) {
		t.Fatalf("sequential: %v, want %v", got, want)
	}
	r1, r1again, r2 := ports(1, PortRandom), ports(1, PortRandom), ports(2, PortRandom)
	if !slices.Equal(r1, r1again) || slices.Equal(r1, r2) {
		t.Fatalf("random ports not seeded: %v, %v, %v", r1, r1again, r2)
	}
	sorted := slices.Clone(r1)
	slices.Sort(sorted)
	if distinct := slices.Compact(sorted); len(distinct) != len(r1) || distinct[0] < natPortMin || r1[1] == r1[0]+1 && r1[2] == r1[1]+1 {
		t.Fatalf("random ports %v: want distinct, in range, not consecutive", r1)
	}
	if ports(1, 0)[0] != 5000 {
		t.Fatal("default allocation does not preserve ports")
	}
}

func TestNATHairpinning(t *testing.T) {
	for _, hairpin := range []bool{true, false} {
		t.Run(fmt.Sprintf("hairpinning=%v", hairpin), func(t *testing.T) {
			l := newNATLab(t, 1, NATConfig{Filtering: EndpointIndependent, Hairpinning: hairpin})
			y := listen(t, l.nat.NewHost(privY, Link{}), 6000)
			ry := record(y, l.n.Clock())
			eX := l.observed(t, l.s1a, l.r1a)
			mustWrite(t, y, []byte("y"), l.s1a.LocalAddrPort())
			l.n.RunFor(time.Millisecond)
			eY := l.r1a.all()[1].from
			// X sends to Y's public address, from inside.
			mustWrite(t, l.x, []byte("to Y's public address"), eY)
			l.n.RunFor(time.Millisecond)
			if !hairpin {
				if ry.len() != 0 || l.n.Stats().Dropped(DropHairpin) != 1 {
					t.Fatalf("without hairpinning: Y got %d, %v", ry.len(), l.n.Stats())
				}
				// From a socket with no mapping yet: dropped before translation.
				x2 := listen(t, l.x.Host(), 5001)
				mustWrite(t, x2, []byte("to Y's public address"), eY)
				l.n.RunFor(time.Millisecond)
				if l.nat.Mappings() != 2 || l.n.Stats().Dropped(DropHairpin) != 2 {
					t.Fatalf("%d mappings (want 2: the dropped hairpin packet made one); %v", l.nat.Mappings(), l.n.Stats())
				}
				return
			}
			p := ry.all()
			if len(p) != 1 || p[0].from != eX {
				t.Fatalf("Y got %v, want one packet from X's external address %v", p, eX)
			}
			// Y answers the address it saw; the answer hairpins back to X.
			mustWrite(t, y, []byte("back"), p[0].from)
			l.n.RunFor(time.Millisecond)
			if px := l.rx.all(); len(px) != 1 || px[0].from != eY {
				t.Fatalf("X got %v, want one packet from %v", px, eY)
			}
		})
	}
}

func TestNATHairpinIsFiltered(t *testing.T) {
	l := newNATLab(t, 1, NATConfig{Filtering: AddressAndPortDependent, Hairpinning: true})
	y := listen(t, l.nat.NewHost(privY, Link{}), 6000)
	ry := record(y, l.n.Clock())
	mustWrite(t, y, []byte("y"), l.s1a.LocalAddrPort())
	l.n.RunFor(time.Millisecond)
	eY := l.r1a.all()[0].from
	mustWrite(t, l.x, []byte("unsolicited"), eY)
	l.n.RunFor(time.Millisecond)
	if ry.len() != 0 || l.n.Stats().Dropped(DropNATFiltered) != 1 {
		t.Fatalf("hairpinned packet passed port-dependent filtering: %v", l.n.Stats())
	}
}

func TestNATFlushMappings(t *testing.T) {
	l := newNATLab(t, 1, NATConfig{Filtering: EndpointIndependent, PortAllocation: PortSequential})
	e1 := l.observed(t, l.s1a, l.r1a)
	l.nat.FlushMappings()
	if l.reaches(t, l.s1a, e1) {
		t.Fatal("inbound passed after FlushMappings")
	}
	if l.n.Stats().Dropped(DropNATNoMapping) != 1 {
		t.Fatalf("%v", l.n.Stats())
	}
	e2 := l.observed(t, l.s1a, l.r1a)
	if e2 == e1 {
		t.Fatalf("rebinding kept port %v", e1)
	}
	if !l.reaches(t, l.s1a, e2) {
		t.Fatal("new mapping does not work")
	}
}

func TestNATSetAddrRenumbers(t *testing.T) {
	l := newNATLab(t, 1, NATConfig{Filtering: EndpointIndependent})
	e1 := l.observed(t, l.s1a, l.r1a)
	newIP := netip.MustParseAddr("198.51.100.99")
	l.nat.SetAddr(newIP)
	if l.reaches(t, l.s1a, e1) {
		t.Fatal("old public address still reaches X")
	}
	if e2 := l.observed(t, l.s1a, l.r1a); e2.Addr() != newIP {
		t.Fatalf("source after renumbering %v, want %v", e2, newIP)
	}
}

func TestHostsBehindOneNATTalkByPrivateAddress(t *testing.T) {
	l := newNATLab(t, 1, NATConfig{})
	y := listen(t, l.nat.NewHost(privY, Link{}), 6000)
	ry := record(y, l.n.Clock())
	mustWrite(t, l.x, []byte("lan"), y.LocalAddrPort())
	l.n.RunFor(time.Millisecond)
	if p := ry.all(); len(p) != 1 || p[0].from != l.x.LocalAddrPort() {
		t.Fatalf("Y got %v, want one packet from %v", p, l.x.LocalAddrPort())
	}
	if l.nat.Mappings() != 0 {
		t.Fatal("LAN traffic made a NAT mapping")
	}
	// A private address is not reachable from the internet.
	mustWrite(t, l.s1a, []byte("x"), y.LocalAddrPort())
	l.n.RunFor(time.Millisecond)
	if ry.len() != 1 || l.n.Stats().Dropped(DropNoRoute) != 1 {
		t.Fatalf("private address reached from outside: %v", l.n.Stats())
	}
}

// A home NAT behind a carrier-grade NAT: translations and links compose.
func TestNestedNAT(t *testing.T) {
	n := virtualNet(t, 1)
	cgnIP := netip.MustParseAddr("198.51.100.50")
	cgn := n.NewNAT(cgnIP, NATConfig{Filtering: EndpointIndependent, Hairpinning: true}, Link{Latency: 3 * time.Millisecond})
	home1 := cgn.NewNAT(netip.MustParseAddr("100.64.0.2"), NATConfig{Filtering: EndpointIndependent}, Link{Latency: 2 * time.Millisecond})
	home2 := cgn.NewNAT(netip.MustParseAddr("100.64.0.3"), NATConfig{Filtering: EndpointIndependent}, Link{})
	x := listen(t, home1.NewHost(netip.MustParseAddr("192.168.1.2"), Link{Latency: time.Millisecond}), 5000)
	y := listen(t, home2.NewHost(netip.MustParseAddr("192.168.1.2"), Link{}), 5000)
	s := listen(t, n.NewHost(srv1IP, Link{Latency: 4 * time.Millisecond}), 3478)
	clk := n.Clock()
	rx, ry, rs := record(x, clk), record(y, clk), record(s, clk)

	start := clk.Now()
	mustWrite(t, x, []byte("x"), s.LocalAddrPort())
	n.RunFor(time.Second)
	p := rs.all()
	if len(p) != 1 || p[0].from.Addr() != cgnIP {
		t.Fatalf("server saw %v, want the CGNAT address", p)
	}
	if d := p[0].at.Sub(start); d != 10*time.Millisecond {
		t.Fatalf("one-way delay %v, want 1+2+3+4 ms", d)
	}
	mustWrite(t, s, []byte("reply"), p[0].from)
	n.RunFor(time.Second)
	if rx.len() != 1 {
		t.Fatal("reply through two NATs not delivered")
	}
	// Y, behind the other home NAT, reaches X's CGNAT address by
	// hairpinning in the CGNAT.
	mustWrite(t, y, []byte("y"), s.LocalAddrPort())
	n.RunFor(time.Second)
	eY := rs.all()[1].from
	mustWrite(t, x, []byte("x to y"), eY)
	n.RunFor(time.Second)
	if q := ry.all(); len(q) != 1 || q[0].from != p[0].from {
		t.Fatalf("Y got %v, want one packet from X's CGNAT address %v", q, p[0].from)
	}
}

// A busy NAT (hundreds of mappings) finds free ports through its bitmap;
// the choice is the same as a plain scan: next free port, wrapping from
// 65535 to 1024.
func TestNATBusyPortAllocationWraps(t *testing.T) {
	n := virtualNet(t, 1)
	nat := n.NewNAT(natIP, NATConfig{Mapping: AddressAndPortDependent, MappingTimeout: -1}, Link{})
	x := listen(t, nat.NewHost(privX, Link{}), 65534)
	y := listen(t, nat.NewHost(privY, Link{}), 1100)
	srv := listen(t, n.NewHost(srv1IP, Link{}), 3478)
	rs := record(srv, n.Clock())
	for i := range 300 {
		mustWrite(t, x, []byte("x"), netip.AddrPortFrom(srv1IP, uint16(1000+i)))
	}
	n.RunFor(time.Millisecond)
	var want []uint16
	want = append(want, 65534, 65535)
	for p := uint16(1024); len(want) < 300; p++ {
		want = append(want, p)
	}
	var got []uint16
	for i := range 300 {
		ext, ok := nat.ExternalAddr(netip.AddrPortFrom(privX, 65534), netip.AddrPortFrom(srv1IP, uint16(1000+i)))
		if !ok {
			t.Fatalf("no mapping towards port %d", 1000+i)
		}
		got = append(got, ext.Port())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ports %v..., want %v...", got[:5], want[:5])
	}
	// Y's port 1100 is taken by X's 77th mapping; Y gets the next free one.
	mustWrite(t, y, []byte("y"), srv.LocalAddrPort())
	n.RunFor(time.Millisecond)
	if p := rs.all(); len(p) != 1 || p[0].from.Port() != 1024+298 {
		t.Fatalf("Y mapped to %v, want port %d", p, 1024+298)
	}
}
