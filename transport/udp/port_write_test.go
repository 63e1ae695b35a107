package udp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/transport"
)

// TestWriteBatchLargerThanOneCall sends more messages than one sendmmsg
// call carries and checks that every one arrives, in order, from the port.
func TestWriteBatchLargerThanOneCall(t *testing.T) {
	for _, kind := range portKinds() {
		t.Run(kind.name, func(t *testing.T) {
			p := kind.open(t, loopback4)
			rcv := newSender(t)
			rcv.SetReadBuffer(1 << 20)
			dst := rcv.LocalAddr().(*net.UDPAddr).AddrPort()
			const n = 100
			msgs := make([]Message, n)
			for i := range msgs {
				msgs[i] = Message{[]byte{transport.TypeNoiseData, byte(i)}, dst}
			}
			if got, err := p.WriteBatch(msgs); got != n || err != nil {
				t.Fatalf("WriteBatch = %d, %v; want %d, nil", got, err, n)
			}
			rcv.SetReadDeadline(time.Now().Add(waitFor))
			buf := make([]byte, 10)
			for i := range n {
				k, from, err := rcv.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("after %d packets: %v", i, err)
				}
				if k != 2 || buf[1] != byte(i) || from.Port() != p.LocalAddr().Port() {
					t.Fatalf("packet %d: % x from %v", i, buf[:k], from)
				}
			}
			if got := p.Stats().Out[ClassOwn].Packets; got != n {
				t.Errorf("Out[own] = %d, want %d", got, n)
			}
		})
	}
}

// TestWriteBatchStopsAtUnsendableMessage gives an IPv4 port an IPv6
// destination in the middle of a batch: the messages before it are sent
// and counted, WriteBatch reports where it stopped.
func TestWriteBatchStopsAtUnsendableMessage(t *testing.T) {
	for _, kind := range portKinds() {
		t.Run(kind.name, func(t *testing.T) {
			p := kind.open(t, loopback4)
			rcv := newSender(t)
			dst := rcv.LocalAddr().(*net.UDPAddr).AddrPort()
			msgs := []Message{
				{[]byte{transport.TypePunch, 0}, dst},
				{[]byte{transport.TypePunch, 1}, dst},
				{[]byte{transport.TypePunch, 2}, netip.MustParseAddrPort("[2001:db8::1]:9")},
				{[]byte{transport.TypePunch, 3}, dst},
			}
			n, err := p.WriteBatch(msgs)
			if n != 2 || err == nil {
				t.Fatalf("WriteBatch = %d, %v; want 2 and an error", n, err)
			}
			if s := p.Stats(); s.Out[ClassOwn].Packets != 2 || s.WriteErrors != 1 {
				t.Errorf("stats: %d sent, %d write errors; want 2, 1", s.Out[ClassOwn].Packets, s.WriteErrors)
			}
		})
	}
}

// TestIPv6Loopback runs the port on [::1] with an IPv6 peer.
func TestIPv6Loopback(t *testing.T) {
	for _, kind := range portKinds() {
		t.Run(kind.name, func(t *testing.T) {
			p := kind.open(t, netip.MustParseAddrPort("[::1]:0"))
			got := make(chan netip.AddrPort, 1)
			p.HandleType(transport.TypePunch, func(pkt []byte, from netip.AddrPort) { got <- from })
			s, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
			if err != nil {
				t.Skipf("no IPv6 loopback: %v", err)
			}
			defer s.Close()
			if _, err := s.WriteToUDPAddrPort([]byte{transport.TypePunch}, p.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			select {
			case from := <-got:
				if from != s.LocalAddr().(*net.UDPAddr).AddrPort() {
					t.Errorf("from = %v, want %v", from, s.LocalAddr())
				}
				if _, err := p.WriteBatch([]Message{{[]byte{transport.TypePunch, 'R'}, from}}); err != nil {
					t.Fatal(err)
				}
			case <-time.After(waitFor):
				t.Fatal("IPv6 packet lost")
			}
			s.SetReadDeadline(time.Now().Add(waitFor))
			buf := make([]byte, 10)
			if n, from, err := s.ReadFromUDPAddrPort(buf); err != nil || buf[n-1] != 'R' || from.Port() != p.LocalAddr().Port() {
				t.Fatalf("reply % x from %v: %v", buf[:n], from, err)
			}
		})
	}
}

// TestOversizedDatagramIsDropped checks that a datagram longer than
// MaxPacketSize is dropped and counted, not delivered cut short.
func TestOversizedDatagramIsDropped(t *testing.T) {
	const max = 100
	opens := map[string]func() *Port{
		"NewPort": func() *Port {
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(loopback4))
			if err != nil {
				t.Fatal(err)
			}
			return NewPort(c, Config{MaxPacketSize: max})
		},
		"ListenDemux": func() *Port {
			p, err := Listen(Config{Addr: loopback4, MaxPacketSize: max, DisableSteering: true})
			if err != nil {
				t.Fatal(err)
			}
			return p
		},
		"Listen": func() *Port {
			p, err := Listen(Config{Addr: loopback4, MaxPacketSize: max})
			if err != nil {
				t.Fatal(err)
			}
			return p
		},
	}
	for name, open := range opens {
		t.Run(name, func(t *testing.T) {
			p := open()
			defer p.Close()
			var r recorder
			p.HandleType(transport.TypeNoiseData, r.handle)
			s := newSender(t)
			for _, size := range []int{max + 1, max, 4 * max} {
				b := make([]byte, size)
				b[0] = transport.TypeNoiseData
				s.WriteToUDPAddrPort(b, p.LocalAddr())
			}
			eventually(t, "3 packets read", func() bool { return p.Stats().In[ClassOwn].Packets == 3 })
			if got := r.get(); len(got) != 1 || len(got[0].pkt) != max {
				t.Errorf("handler got %d packets, want the one of %d bytes", len(got), max)
			}
			if got := p.Stats().Drops.Truncated; got != 2 {
				t.Errorf("Truncated = %d, want 2", got)
			}
		})
	}
}
