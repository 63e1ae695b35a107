package udp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/transport"
)

// TestEachClassReachesOnlyItsHandler sends every class of packet from
// several source ports and checks that each handler (and QUICConn) got
// exactly its own packets, that unregistered and invalid ones were dropped
// and counted, and that sources arrive as plain IPv4 addresses.
func TestEachClassReachesOnlyItsHandler(t *testing.T) {
	for _, kind := range portKinds() {
		t.Run(kind.name, func(t *testing.T) {
			p := kind.open(t, netip.MustParseAddrPort("[::]:0"))
			var stun, community, noise, punch recorder
			p.HandleSTUN(stun.handle)
			p.HandleCommunity(community.handle)
			p.HandleType(transport.TypeNoiseData, noise.handle)
			p.HandleType(transport.TypePunch, punch.handle)
			quic := quicReader(t, p.QUICConn())

			senders := []*net.UDPConn{newSender(t), newSender(t), newSender(t), newSender(t)}
			var want struct {
				stun, community, noise, punch, quic []received
			}
			sent, invalid, unhandled := 0, 0, 0
			send := func(s *net.UDPConn, b []byte, into *[]received) {
				t.Helper()
				if _, err := s.WriteToUDPAddrPort(b, to4(p)); err != nil {
					t.Fatal(err)
				}
				sent++
				if into != nil {
					*into = append(*into, received{b, s.LocalAddr().(*net.UDPAddr).AddrPort()})
				}
			}
			for i, s := range senders {
				tag := byte(i)
				send(s, stunPacket(tag), &want.stun)
				send(s, communityPacket(tag), &want.community)
				send(s, []byte{transport.TypeNoiseData, tag, 1, 2}, &want.noise)
				send(s, []byte{transport.TypePunch, tag}, &want.punch)
				send(s, []byte{0xC3, 0, 0, 0, 1, tag}, &want.quic) // long header
				send(s, []byte{0x41, tag, 9, 9}, &want.quic)       // short header
				send(s, []byte{0x80, 0, 0, 0, 0, tag}, &want.quic) // version negotiation, fixed bit clear
				send(s, []byte{transport.TypeRelay, tag}, nil)     // no handler
				unhandled++
				send(s, []byte{0x01, 0x01, tag}, nil) // 0x00–0x03, neither STUN nor IPv8
				send(s, nil, nil)                     // empty datagram
				invalid += 2
			}

			wantIn := sent // the port's socket reads everything but QUIC when steered
			if p.Steered() {
				wantIn -= len(want.quic)
			}
			eventually(t, "every packet counted in", func() bool {
				var n uint64
				for _, c := range p.Stats().In {
					n += c.Packets
				}
				return n == uint64(wantIn)
			})
			eventually(t, "QUIC packets read from QUICConn", func() bool { return len(quic.get()) == len(want.quic) })

			check := func(name string, r *recorder, want []received) {
				t.Helper()
				got := r.get()
				key := func(x received) string {
					return fmt.Sprintf("%x@%v", x.pkt, x.from.Addr().Unmap()) + fmt.Sprint(x.from.Port())
				}
				var g, w []string
				for _, x := range got {
					g = append(g, key(x))
				}
				for _, x := range want {
					w = append(w, key(x))
				}
				slices.Sort(g)
				slices.Sort(w)
				if !slices.Equal(g, w) {
					t.Errorf("%s got %v\nwant %v", name, g, w)
				}
			}
			check("STUN handler", &stun, want.stun)
			check("community handler", &community, want.community)
			check("noise handler", &noise, want.noise)
			check("punch handler", &punch, want.punch)
			check("QUICConn", quic, want.quic)
			for _, r := range [][]received{stun.get(), community.get(), noise.get(), punch.get()} {
				for _, x := range r {
					if !x.from.Addr().Is4() {
						t.Errorf("handler got source %v, want an unmapped IPv4 address", x.from)
					}
				}
			}

			s := p.Stats()
			if s.Drops.Unhandled != uint64(unhandled) || s.Drops.Invalid != uint64(invalid) {
				t.Errorf("drops = %+v, want %d unhandled, %d invalid", s.Drops, unhandled, invalid)
			}
			if s.Drops.Misrouted != 0 || s.Drops.QUICQueueFull != 0 {
				t.Errorf("drops = %+v, want no misrouted or queue-full drops", s.Drops)
			}
			if got := s.In[ClassSTUN].Packets; got != uint64(len(want.stun)) {
				t.Errorf("In[STUN] = %d packets, want %d", got, len(want.stun))
			}
			if got, want := s.In[ClassSTUN].Bytes, uint64(20*len(want.stun)); got != want {
				t.Errorf("In[STUN] = %d bytes, want %d", got, want)
			}
			// With steering, QUIC never reaches the port's socket.
			wantQUICIn := uint64(len(want.quic))
			if p.Steered() {
				wantQUICIn = 0
			}
			if got := s.In[ClassQUIC].Packets; got != wantQUICIn {
				t.Errorf("In[QUIC] = %d, want %d", got, wantQUICIn)
			}
		})
	}
}

// TestSendsLeaveFromTheSharedPort checks that WriteTo, WriteBatch and
// quic-go's writes on QUICConn all carry the port's own source port.
func TestSendsLeaveFromTheSharedPort(t *testing.T) {
	for _, kind := range portKinds() {
		t.Run(kind.name, func(t *testing.T) {
			p := kind.open(t, netip.MustParseAddrPort("[::]:0"))
			rcv := newSender(t)
			dst := rcv.LocalAddr().(*net.UDPAddr).AddrPort()

			if err := p.WriteTo([]byte{transport.TypePunch, 1}, dst); err != nil {
				t.Fatal(err)
			}
			msgs := []Message{
				{[]byte{transport.TypeNoiseData, 2}, dst},
				{stunPacket(3), dst},
				{communityPacket(4), dst},
			}
			if n, err := p.WriteBatch(msgs); n != len(msgs) || err != nil {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
			if _, err := p.QUICConn().WriteTo([]byte{0xC0, 5}, net.UDPAddrFromAddrPort(dst)); err != nil {
				t.Fatal(err)
			}

			rcv.SetReadDeadline(time.Now().Add(waitFor))
			buf := make([]byte, 100)
			var tags []byte
			for range 5 {
				n, from, err := rcv.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatal(err)
				}
				if from.Port() != p.LocalAddr().Port() {
					t.Errorf("packet % x came from port %d, want the shared port %d", buf[:n], from.Port(), p.LocalAddr().Port())
				}
				tags = append(tags, buf[n-1])
			}
			slices.Sort(tags)
			if !bytes.Equal(tags, []byte{1, 2, 3, 4, 5}) {
				t.Errorf("received tags %v, want 1..5", tags)
			}
			s := p.Stats()
			if s.Out[ClassOwn].Packets != 2 || s.Out[ClassSTUN].Packets != 1 || s.Out[ClassCommunity].Packets != 1 {
				t.Errorf("Out = %+v, want 2 own, 1 STUN, 1 community", s.Out)
			}
		})
	}
}

// TestDualStackPortTalksIPv4 sends from an IPv4 socket to a [::]:0 port
// and answers with WriteTo to the plain IPv4 address the handler got.
func TestDualStackPortTalksIPv4(t *testing.T) {
	for _, kind := range portKinds() {
		t.Run(kind.name, func(t *testing.T) {
			p := kind.open(t, netip.MustParseAddrPort("[::]:0"))
			if !p.LocalAddr().Addr().Is6() {
				t.Fatalf("LocalAddr = %v, want [::]", p.LocalAddr())
			}
			got := make(chan netip.AddrPort, 1)
			p.HandleType(transport.TypePunch, func(pkt []byte, from netip.AddrPort) {
				if err := p.WriteTo([]byte{transport.TypePunch, 'R'}, from); err != nil {
					t.Error(err)
				}
				got <- from
			})
			s := newSender(t)
			if _, err := s.WriteToUDPAddrPort([]byte{transport.TypePunch}, to4(p)); err != nil {
				t.Fatal(err)
			}
			var from netip.AddrPort
			select {
			case from = <-got:
			case <-time.After(waitFor):
				t.Fatal("IPv4 packet never reached the dual-stack port")
			}
			if want := s.LocalAddr().(*net.UDPAddr).AddrPort(); from != want {
				t.Errorf("handler saw source %v, want %v (unmapped)", from, want)
			}
			s.SetReadDeadline(time.Now().Add(waitFor))
			buf := make([]byte, 10)
			n, rfrom, err := s.ReadFromUDPAddrPort(buf)
			if err != nil || n != 2 || buf[1] != 'R' {
				t.Fatalf("reply: %q %v", buf[:n], err)
			}
			if rfrom.Port() != p.LocalAddr().Port() {
				t.Errorf("reply from port %d, want %d", rfrom.Port(), p.LocalAddr().Port())
			}
			// An IPv4-mapped destination works as well.
			mapped := netip.AddrPortFrom(netip.AddrFrom16(from.Addr().As16()), from.Port())
			if err := p.WriteTo([]byte{transport.TypePunch, 'M'}, mapped); err != nil {
				t.Fatalf("WriteTo(%v): %v", mapped, err)
			}
			if n, _, err := s.ReadFromUDPAddrPort(buf); err != nil || buf[n-1] != 'M' {
				t.Fatalf("mapped reply: %q %v", buf[:n], err)
			}
		})
	}
}

// TestIPv4PortAcceptsMappedDestination checks the other family: an
// IPv4-only port sends to an IPv4-mapped IPv6 address.
func TestIPv4PortAcceptsMappedDestination(t *testing.T) {
	for _, kind := range portKinds() {
		t.Run(kind.name, func(t *testing.T) {
			p := kind.open(t, loopback4)
			s := newSender(t)
			sa := s.LocalAddr().(*net.UDPAddr).AddrPort()
			mapped := netip.AddrPortFrom(netip.AddrFrom16(sa.Addr().As16()), sa.Port())
			if err := p.WriteTo([]byte{transport.TypePunch, 'M'}, mapped); err != nil {
				t.Fatal(err)
			}
			if n, err := p.WriteBatch([]Message{{[]byte{transport.TypePunch, 'B'}, mapped}}); n != 1 || err != nil {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
			s.SetReadDeadline(time.Now().Add(waitFor))
			buf := make([]byte, 10)
			for _, want := range []byte{'M', 'B'} {
				if n, _, err := s.ReadFromUDPAddrPort(buf); err != nil || buf[n-1] != want {
					t.Fatalf("got %q, %v; want ...%c", buf[:n], err, want)
				}
			}
		})
	}
}

// TestCloseReleasesPortAndUnblocks closes a port with a blocked QUIC reader
// and checks that the reader returns, later calls fail with net.ErrClosed,
// Close is idempotent and the port number can be bound again.
func TestCloseReleasesPortAndUnblocks(t *testing.T) {
	for _, kind := range portKinds() {
		t.Run(kind.name, func(t *testing.T) {
			p := kind.open(t, loopback4)
			addr := p.LocalAddr()
			readErr := make(chan error, 1)
			go func() {
				_, _, err := p.QUICConn().ReadFrom(make([]byte, 100))
				readErr <- err
			}()
			time.Sleep(20 * time.Millisecond) // let the reader block
			if err := p.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			select {
			case err := <-readErr:
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("blocked QUIC read returned %v, want net.ErrClosed", err)
				}
			case <-time.After(waitFor):
				t.Fatal("Close did not unblock a QUICConn reader")
			}
			if err := p.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if err := p.WriteTo([]byte{transport.TypePunch}, addr); !errors.Is(err, net.ErrClosed) {
				t.Errorf("WriteTo after Close = %v, want net.ErrClosed", err)
			}
			if _, err := p.WriteBatch([]Message{{[]byte{transport.TypePunch}, addr}}); !errors.Is(err, net.ErrClosed) {
				t.Errorf("WriteBatch after Close = %v, want net.ErrClosed", err)
			}
			if _, err := p.QUICConn().WriteTo([]byte{0xC0}, net.UDPAddrFromAddrPort(addr)); !errors.Is(err, net.ErrClosed) {
				t.Errorf("QUICConn().WriteTo after Close = %v, want net.ErrClosed", err)
			}
			// The port number is free again: a new port (of the same kind)
			// and a plain socket can both take it.
			p2 := kind.open(t, addr)
			if p2.LocalAddr() != addr {
				t.Errorf("re-opened port at %v, want %v", p2.LocalAddr(), addr)
			}
			p2.Close()
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
			if err != nil {
				t.Fatalf("port %v not released: %v", addr, err)
			}
			c.Close()
		})
	}
}

// TestQUICConnCloseStopsOnlyQUIC closes QUICConn and checks that later
// QUIC-class packets are dropped and counted while the handlers still run.
func TestQUICConnCloseStopsOnlyQUIC(t *testing.T) {
	p, err := Listen(Config{Addr: loopback4, DisableSteering: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var stun recorder
	p.HandleSTUN(stun.handle)
	if err := p.QUICConn().Close(); err != nil {
		t.Fatal(err)
	}
	s := newSender(t)
	s.WriteToUDPAddrPort([]byte{0xC0, 1}, p.LocalAddr())
	s.WriteToUDPAddrPort(stunPacket(1), p.LocalAddr())
	eventually(t, "STUN after QUICConn closed", func() bool { return len(stun.get()) == 1 })
	eventually(t, "QUIC drop counted", func() bool { return p.Stats().Drops.QUICClosed == 1 })
}

// TestDemuxQueueIsBounded fills the user-space demux's queue without
// reading it: the excess is dropped and counted, the queued ones come out
// in order.
func TestDemuxQueueIsBounded(t *testing.T) {
	p, err := Listen(Config{Addr: loopback4, DisableSteering: true, QUICQueueLen: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s := newSender(t)
	for i := range 10 {
		if _, err := s.WriteToUDPAddrPort([]byte{0x40, byte(i)}, p.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "10 QUIC packets in", func() bool { return p.Stats().In[ClassQUIC].Packets == 10 })
	if got := p.Stats().Drops.QUICQueueFull; got != 6 {
		t.Errorf("QUICQueueFull = %d, want 6", got)
	}
	buf := make([]byte, 10)
	for i := range 4 {
		n, _, err := p.QUICConn().ReadFrom(buf)
		if err != nil || n != 2 || buf[1] != byte(i) {
			t.Fatalf("read %d: % x, %v", i, buf[:n], err)
		}
	}
}

// TestDemuxReadDeadline checks the deadline behaviour quic-go relies on:
// a past deadline fails at once with a timeout, setting one unblocks a
// waiting reader (quic.Transport.Close does that), and clearing it lets
// reads wait again.
func TestDemuxReadDeadline(t *testing.T) {
	p, err := Listen(Config{Addr: loopback4, DisableSteering: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	qc := p.QUICConn()
	buf := make([]byte, 10)

	qc.SetReadDeadline(time.Now().Add(-time.Second))
	_, _, err = qc.ReadFrom(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past deadline = %v, want a timeout", err)
	}

	qc.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, _, err := qc.ReadFrom(buf)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("read without deadline returned early: %v", err)
	default:
	}
	qc.SetReadDeadline(time.Now())
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("unblocked read = %v, want deadline exceeded", err)
		}
	case <-time.After(waitFor):
		t.Fatal("SetReadDeadline(now) did not unblock the reader")
	}

	// A future deadline fires by itself.
	qc.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	start := time.Now()
	if _, _, err := qc.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d < 25*time.Millisecond {
		t.Errorf("deadline fired after %v, want ≥ 30ms", d)
	}

	// Cleared again, reads receive.
	qc.SetReadDeadline(time.Time{})
	s := newSender(t)
	s.WriteToUDPAddrPort([]byte{0x40, 7}, p.LocalAddr())
	n, from, err := qc.ReadFrom(buf)
	if err != nil || n != 2 || buf[1] != 7 {
		t.Fatalf("read = % x, %v", buf[:n], err)
	}
	if from.(*net.UDPAddr).AddrPort() != s.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Errorf("from = %v, want %v", from, s.LocalAddr())
	}

	qc.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := qc.WriteTo([]byte{0x40}, s.LocalAddr()); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("write past deadline = %v, want deadline exceeded", err)
	}
}

// TestHandlerCanBeRemoved checks that nil unregisters: the packet is then
// dropped as unhandled.
func TestHandlerCanBeRemoved(t *testing.T) {
	p, err := Listen(Config{Addr: loopback4, DisableSteering: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var r recorder
	p.HandleType(transport.TypeNATProbe, r.handle)
	p.HandleType(transport.TypeNATProbe, nil)
	p.HandleSTUN(r.handle)
	p.HandleSTUN(nil)
	p.HandleCommunity(r.handle)
	p.HandleCommunity(nil)
	s := newSender(t)
	s.WriteToUDPAddrPort([]byte{transport.TypeNATProbe}, p.LocalAddr())
	s.WriteToUDPAddrPort(stunPacket(0), p.LocalAddr())
	s.WriteToUDPAddrPort(communityPacket(0), p.LocalAddr())
	eventually(t, "3 unhandled drops", func() bool { return p.Stats().Drops.Unhandled == 3 })
	if got := r.get(); len(got) != 0 {
		t.Errorf("removed handlers still got %d packets", len(got))
	}
}

func TestHandleTypeOutsideOwnRangePanics(t *testing.T) {
	p, err := Listen(Config{Addr: loopback4, DisableSteering: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, typ := range []byte{0x00, 0x03, 0x40, 0xFF} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("HandleType(%#x) did not panic", typ)
				}
			}()
			p.HandleType(typ, func([]byte, netip.AddrPort) {})
		}()
	}
}

// callbackConn is a PacketConn that delivers through SetHandler, like
// internal/netsim in virtual time; blocking reads are a test failure.
type callbackConn struct {
	net.PacketConn // nil: only the methods below may be used
	t              *testing.T
	local          *net.UDPAddr
	mu             sync.Mutex
	h              func([]byte, netip.AddrPort)
	sent           []Message
	closed         bool
}

func (c *callbackConn) SetHandler(h func([]byte, netip.AddrPort)) {
	c.mu.Lock()
	c.h = h
	c.mu.Unlock()
}

func (c *callbackConn) inject(b []byte, from netip.AddrPort) {
	c.mu.Lock()
	h := c.h
	c.mu.Unlock()
	if h != nil {
		h(b, from)
	}
}

func (c *callbackConn) ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error) {
	c.t.Error("port read from a conn that delivers through SetHandler")
	return 0, netip.AddrPort{}, net.ErrClosed
}

func (c *callbackConn) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, Message{bytes.Clone(b), to})
	return len(b), nil
}

func (c *callbackConn) LocalAddr() net.Addr { return c.local }

func (c *callbackConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

// TestNewPortUsesDeliveryCallback checks that a conn offering SetHandler
// gets no read goroutine, that its callbacks reach the handlers and the
// QUIC queue, and that Close detaches and closes it.
func TestNewPortUsesDeliveryCallback(t *testing.T) {
	c := &callbackConn{t: t, local: net.UDPAddrFromAddrPort(netip.MustParseAddrPort("10.0.0.1:4242"))}
	p := NewPort(c, Config{})
	if p.LocalAddr() != netip.MustParseAddrPort("10.0.0.1:4242") {
		t.Errorf("LocalAddr = %v", p.LocalAddr())
	}
	var stun recorder
	p.HandleSTUN(stun.handle)
	from := netip.MustParseAddrPort("10.0.0.2:5000")
	c.inject(stunPacket(1), from)
	c.inject([]byte{0xC0, 2}, from)
	if got := stun.get(); len(got) != 1 || got[0].from != from {
		t.Fatalf("STUN handler got %v", got)
	}
	buf := make([]byte, 10)
	n, a, err := p.QUICConn().ReadFrom(buf)
	if err != nil || n != 2 || a.(*net.UDPAddr).AddrPort() != from {
		t.Fatalf("QUICConn read % x from %v: %v", buf[:n], a, err)
	}
	if err := p.WriteTo([]byte{transport.TypePunch}, from); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h != nil || !c.closed {
		t.Errorf("after Close: handler still set %v, conn closed %v", c.h != nil, c.closed)
	}
	if len(c.sent) != 1 || c.sent[0].Addr != from {
		t.Errorf("sent %v", c.sent)
	}
}
