package pcport

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// The port hands STUN (cookie), community (00 02) and typed packets to
// their handlers and drops the rest.
func TestPortDemultiplexesByFirstBytes(t *testing.T) {
	a, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := New(a)
	defer p.Close()
	got := make(chan string, 8)
	p.HandleSTUN(func(b []byte, _ netip.AddrPort) { got <- "stun" })
	p.HandleCommunity(func(b []byte, _ netip.AddrPort) { got <- "community" })
	p.HandleType(0x09, func(b []byte, _ netip.AddrPort) { got <- "punch" })
	p.HandleType(0x02, func(b []byte, _ netip.AddrPort) { got <- "never: 0x02 is not a type" })

	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stun := append([]byte{0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42}, make([]byte, 12)...)
	for _, pkt := range [][]byte{stun, {0, 2, 1, 2, 3}, {0x09, 1}, {0x01, 0, 0, 0}, {0x0A}, {0x41}} {
		if _, err := c.WriteToUDPAddrPort(pkt, p.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"stun", "community", "punch"}
	for _, w := range want {
		select {
		case g := <-got:
			if g != w {
				t.Fatalf("got %s, want %s", g, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s packet", w)
		}
	}
	select {
	case g := <-got:
		t.Fatalf("unexpected %s", g)
	case <-time.After(100 * time.Millisecond):
	}
}
