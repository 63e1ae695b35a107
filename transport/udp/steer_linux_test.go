//go:build linux

package udp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipv8/go-ipv8/transport"
)

// steeringExpected says whether Listen must steer on this system.
const steeringExpected = true

// reuseportSocket binds a plain SO_REUSEPORT socket, as another process of
// the same user could.
func reuseportSocket(t *testing.T, addr netip.AddrPort) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return control(rc, func(fd int) error {
			return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", addr.String())
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { pc.Close() })
	return pc.(*net.UDPConn), nil
}

// senderOnPort binds a sender to a fixed port in [lo, hi), so the test
// controls the bytes of the UDP header the steering must not look at.
func senderOnPort(t *testing.T, lo, hi uint16) *net.UDPConn {
	for port := lo; port < hi; port++ {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)))
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
	}
	t.Fatalf("no free port in [%d, %d)", lo, hi)
	return nil
}

// TestSteeringReadsFirstPayloadByte checks the assumption steerProgram
// rests on: the kernel runs it with the UDP header pulled, so offset 0 is
// the first payload byte. Senders on ports whose high byte is below 0x40
// send QUIC and senders on ports above send non-QUIC; if the program read
// the source port instead, both would go to the wrong socket.
func TestSteeringReadsFirstPayloadByte(t *testing.T) {
	p, err := Listen(Config{Addr: loopback4})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !p.Steered() {
		t.Fatal("not steered")
	}
	if _, ok := p.QUICConn().(*net.UDPConn); !ok {
		t.Fatalf("steered QUICConn is %T, want quic-go's own *net.UDPConn", p.QUICConn())
	}
	var own recorder
	p.HandleType(transport.TypeNoiseData, own.handle)
	quic := quicReader(t, p.QUICConn())

	low := senderOnPort(t, 0x1200, 0x1300)  // source port high byte 0x12: not QUIC-like
	high := senderOnPort(t, 0xC800, 0xC900) // source port high byte 0xC8: QUIC-like
	const n = 50
	for i := range n {
		low.WriteToUDPAddrPort([]byte{0xC0, byte(i)}, p.LocalAddr())
		high.WriteToUDPAddrPort([]byte{transport.TypeNoiseData, byte(i)}, p.LocalAddr())
	}
	eventually(t, "both flows", func() bool { return len(quic.get()) == n && len(own.get()) == n })
	for _, r := range quic.get() {
		if r.from.Port() != low.LocalAddr().(*net.UDPAddr).AddrPort().Port() || r.pkt[0] != 0xC0 {
			t.Fatalf("quic-go's socket got % x from %v", r.pkt, r.from)
		}
	}
	for _, r := range own.get() {
		if r.from.Port() != high.LocalAddr().(*net.UDPAddr).AddrPort().Port() {
			t.Fatalf("handler got % x from %v", r.pkt, r.from)
		}
	}
	if s := p.Stats(); s.Drops.Misrouted != 0 || s.In[ClassQUIC].Packets != 0 {
		t.Errorf("QUIC reached the port's socket: %+v", s)
	}
}

// TestListenRefusesPortInAnotherGroup checks that Listen never joins a
// reuseport group it did not create: a port held by someone else's
// SO_REUSEPORT socket (same user, so the kernel would allow joining) is in
// use, as it would be for a plain bind.
func TestListenRefusesPortInAnotherGroup(t *testing.T) {
	foreign, err := reuseportSocket(t, loopback4)
	if err != nil {
		t.Fatal(err)
	}
	addr := foreign.LocalAddr().(*net.UDPAddr).AddrPort()
	p, err := Listen(Config{Addr: addr})
	if err == nil {
		p.Close()
		t.Fatalf("Listen(%v) joined a foreign reuseport group", addr)
	}
	if !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("Listen(%v) = %v, want EADDRINUSE", addr, err)
	}
}

// TestForeignGroupMemberGetsNothing lets another socket of the same user
// join the port's group after Listen (the kernel allows it) and checks that
// the steering still hands every packet to the port's two sockets.
func TestForeignGroupMemberGetsNothing(t *testing.T) {
	p, err := Listen(Config{Addr: loopback4})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	intruder, err := reuseportSocket(t, p.LocalAddr())
	if err != nil {
		t.Fatalf("same-user SO_REUSEPORT join failed (%v): the kernel's rule changed, revisit the guard", err)
	}
	var own recorder
	p.HandleType(transport.TypePunch, own.handle)
	quic := quicReader(t, p.QUICConn())
	const n = 40
	for range 4 {
		s := newSender(t)
		for i := range n / 4 {
			s.WriteToUDPAddrPort([]byte{transport.TypePunch, byte(i)}, p.LocalAddr())
			s.WriteToUDPAddrPort([]byte{0x40, byte(i)}, p.LocalAddr())
		}
	}
	eventually(t, "all packets at the port", func() bool { return len(quic.get()) == n && len(own.get()) == n })
	intruder.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, from, err := intruder.ReadFromUDPAddrPort(make([]byte, 100)); err == nil {
		t.Fatalf("the foreign group member received %d bytes from %v", n, from)
	}
}
