package natlab

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// reflector answers each datagram with the source address it saw, from
// sockets in the server namespace.
func reflector(t *testing.T, l *Lab, addrs ...netip.AddrPort) {
	t.Helper()
	for _, a := range addrs {
		c, err := l.ListenUDP(l.ServerNS(), a)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go func() {
			buf := make([]byte, 1500)
			for {
				_, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				c.WriteToUDPAddrPort([]byte(from.String()), from)
			}
		}()
	}
}

// observed sends one datagram from c to each server and returns the
// addresses the servers saw.
func observed(t *testing.T, c *net.UDPConn, servers ...netip.AddrPort) []netip.AddrPort {
	t.Helper()
	var out []netip.AddrPort
	buf := make([]byte, 100)
	for _, s := range servers {
		var got netip.AddrPort
		for try := 0; try < 5 && !got.IsValid(); try++ {
			if _, err := c.WriteToUDPAddrPort([]byte("?"), s); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err == nil {
				got, _ = netip.ParseAddrPort(string(buf[:n]))
			}
		}
		if !got.IsValid() {
			t.Fatalf("no answer from %s", s)
		}
		out = append(out, got)
	}
	return out
}

// A socket opened with ListenUDP lives in its namespace: the sequential
// router gives each new flow the next port, and Move changes the client's
// public address under a running socket.
func TestSequentialRouterAndMove(t *testing.T) {
	l := New(t, Config{NoCoturn: true, NATs: []NAT{{"seq", Sequential, 0}, {"prc", PortRestricted, 0}}})
	servers := []netip.AddrPort{
		netip.AddrPortFrom(Spare1, 5000), netip.AddrPortFrom(Spare1, 5001),
		netip.AddrPortFrom(Spare2, 5000), netip.AddrPortFrom(Spare2, 5001),
	}
	reflector(t, l, servers...)

	c, err := l.ListenUDP(l.ClientNS("seq"), netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := observed(t, c, servers...)
	for i, a := range got {
		if a.Addr() != l.RouterWAN("seq") {
			t.Fatalf("flow %d seen from %s, want the router's WAN %s", i, a, l.RouterWAN("seq"))
		}
		if i > 0 && a.Port() != got[i-1].Port()+1 {
			t.Fatalf("ports %v: want consecutive ports for consecutive flows", got)
		}
	}
	// The same flow again keeps its mapping.
	if again := observed(t, c, servers[0]); again[0] != got[0] {
		t.Fatalf("existing flow remapped: %s then %s", got[0], again[0])
	}

	ip, err := l.Move("seq", "prc")
	if err != nil {
		t.Fatal(err)
	}
	if !ip.Is4() || ip == l.ClientIP("seq") {
		t.Fatalf("Move gave %s", ip)
	}
	after := observed(t, c, servers[0])
	if after[0].Addr() != l.RouterWAN("prc") {
		t.Fatalf("after Move the server sees %s, want prc's router %s", after[0], l.RouterWAN("prc"))
	}
}

// coturn's classifier sees the sequential router as what it is built for:
// address-and-port-dependent mapping and filtering.
func TestSequentialRouterIsSymmetricForCoturn(t *testing.T) {
	l := New(t, Config{NATs: []NAT{{"seq", Sequential, 0}}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := l.NATDiscovery(ctx, "seq", STUN1)
	if err != nil {
		t.Fatalf("%v\n%s", err, d.Output)
	}
	m, f := Expected(Sequential)
	if d.Mapping != m || d.Filtering != f || d.NoNAT {
		t.Fatalf("turnutils_natdiscovery says %s/%s (no NAT %v), want %s/%s", d.Mapping, d.Filtering, d.NoNAT, m, f)
	}
}
