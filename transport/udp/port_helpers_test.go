package udp

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// waitFor is the generous timeout of these tests: they must pass with -race
// on a loaded 2-core machine.
const waitFor = 20 * time.Second

// portKind opens a port one way; each behaviour is tested on every kind.
type portKind struct {
	name string
	open func(t testing.TB, addr netip.AddrPort) *Port
}

func portKinds() []portKind {
	kinds := []portKind{
		{"NewPort", func(t testing.TB, addr netip.AddrPort) *Port {
			netw, addr := network(addr)
			c, err := net.ListenUDP(netw, net.UDPAddrFromAddrPort(addr))
			if err != nil {
				t.Fatal(err)
			}
			p := NewPort(c, Config{})
			t.Cleanup(func() { p.Close() })
			return p
		}},
		{"ListenDemux", func(t testing.TB, addr netip.AddrPort) *Port {
			p, err := Listen(Config{Addr: addr, DisableSteering: true})
			if err != nil {
				t.Fatal(err)
			}
			if p.Steered() {
				t.Fatal("DisableSteering: port reports Steered")
			}
			t.Cleanup(func() { p.Close() })
			return p
		}},
	}
	if steeringExpected {
		kinds = append(kinds, portKind{"ListenSteered", func(t testing.TB, addr netip.AddrPort) *Port {
			p, err := Listen(Config{Addr: addr})
			if err != nil {
				t.Fatal(err)
			}
			if !p.Steered() {
				t.Fatal("Listen on Linux did not set up kernel steering")
			}
			t.Cleanup(func() { p.Close() })
			return p
		}})
	}
	return kinds
}

var loopback4 = netip.MustParseAddrPort("127.0.0.1:0")

// dialTo returns a fresh socket to send test packets from.
func newSender(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(loopback4))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// to4 is the IPv4 loopback address of p (which may be bound to [::]).
func to4(p *Port) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), p.LocalAddr().Port())
}

type received struct {
	pkt  []byte
	from netip.AddrPort
}

// recorder is a handler that keeps copies of what it gets.
type recorder struct {
	mu   sync.Mutex
	pkts []received
}

func (r *recorder) handle(pkt []byte, from netip.AddrPort) {
	r.mu.Lock()
	r.pkts = append(r.pkts, received{bytes.Clone(pkt), from})
	r.mu.Unlock()
}

func (r *recorder) get() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.pkts...)
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// quicReader reads QUICConn in the background and keeps what it gets.
func quicReader(t testing.TB, pc net.PacketConn) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			r.handle(buf[:n], from.(*net.UDPAddr).AddrPort())
		}
	}()
	t.Cleanup(func() {
		pc.SetReadDeadline(time.Now())
		<-done
	})
	return r
}

func communityPacket(tag byte) []byte {
	b := []byte{0x00, 0x02}
	b = append(b, bytes.Repeat([]byte{0xAB}, 20)...)
	return append(b, 0xF6, tag)
}

func stunPacket(tag byte) []byte {
	b := stunHeader(0x0001, 0)
	b[19] = tag
	return b
}
