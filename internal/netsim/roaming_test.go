package netsim

import (
	"net/netip"
	"testing"
	"time"
)

// A flows pings to B every 10ms; halfway A's address changes. B sees the
// new source at once, the echoes in flight to the old address are lost,
// and the flow carries on from the new address.
func TestHostSetAddrMidFlow(t *testing.T) {
	n := virtualNet(t, 1)
	a, b := pair(t, n, Link{Latency: 5 * time.Millisecond}, Link{Latency: 5 * time.Millisecond})
	rb := &recorder{}
	b.SetHandler(func(pkt []byte, from netip.AddrPort) {
		rb.mu.Lock()
		rb.pkts = append(rb.pkts, got{data: pkt, from: from})
		rb.mu.Unlock()
		b.WriteToUDPAddrPort(pkt, from)
	})
	ra := record(a, n.Clock())
	newIP := netip.MustParseAddr("203.0.113.77")
	for i := range 100 {
		if i == 50 {
			a.Host().SetAddr(newIP)
		}
		mustWrite(t, a, numbered(uint32(i), 8), b.LocalAddrPort())
		n.RunFor(10 * time.Millisecond)
	}
	n.RunFor(time.Second)
	for i, p := range rb.all() {
		want := ipA
		if i >= 50 {
			want = newIP
		}
		if p.from != netip.AddrPortFrom(want, 1000) {
			t.Fatalf("packet %d came from %v, want %v", i, p.from, want)
		}
	}
	if got := a.LocalAddrPort(); got != netip.AddrPortFrom(newIP, 1000) {
		t.Fatalf("LocalAddrPort %v after the move", got)
	}
	// The echo of packet 49 was in flight (20ms RTT, 10ms spacing) to the
	// old address when it changed: lost. Everything else comes back.
	if ra.len() != 99 || n.Stats().Dropped(DropNoRoute) != 1 {
		t.Fatalf("A got %d echoes; %v", ra.len(), n.Stats())
	}
}

// A laptop on the public internet joins a NATed Wi-Fi mid-flow, using
// blocking reads on the real-time network.
func TestHostMoveBehindNATMidFlow(t *testing.T) {
	n := realNet(t, 1)
	a, b := pair(t, n, Link{Latency: time.Millisecond}, Link{Latency: time.Millisecond})
	nat := n.NewNAT(natIP, NATConfig{}, Link{Latency: time.Millisecond})
	b.SetHandler(func(pkt []byte, from netip.AddrPort) { b.WriteToUDPAddrPort(pkt, from) })
	buf := make([]byte, 64)
	echo := func(i int) netip.AddrPort {
		t.Helper()
		mustWrite(t, a, numbered(uint32(i), 8), b.LocalAddrPort())
		a.SetReadDeadline(time.Now().Add(10 * time.Second))
		k, from, err := a.ReadFromUDPAddrPort(buf)
		if err != nil || binaryBE(buf[:k]) != uint32(i) || from != b.LocalAddrPort() {
			t.Fatalf("echo %d: %v from %v", i, err, from)
		}
		return from
	}
	for i := range 5 {
		echo(i)
	}
	a.Host().MoveBehind(nat, privX)
	for i := 5; i < 10; i++ {
		echo(i)
	}
	if ext, ok := nat.ExternalAddr(netip.AddrPortFrom(privX, 1000), b.LocalAddrPort()); !ok || ext.Addr() != natIP {
		t.Fatalf("no NAT mapping for the moved host: %v %v", ext, ok)
	}
	// And back out onto the internet with a new public address.
	a.Host().MoveBehind(nil, ipC)
	echo(10)
}
