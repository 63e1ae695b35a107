// Package pcport is a minimal transport.Port over one transport.PacketConn,
// for nat's tests and probes: it delivers STUN, community and typed
// packets to their handlers, through the conn's SetHandler callback when it
// has one (internal/netsim, where reads must not block in virtual time) or
// a read goroutine. The host's real port is transport/udp.
package pcport

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/ipv8/go-ipv8/transport"
)

// Port implements transport.Port over a PacketConn.
type Port struct {
	pc        transport.PacketConn
	local     netip.AddrPort
	stun      atomic.Pointer[transport.PacketHandler]
	community atomic.Pointer[transport.PacketHandler]
	types     [transport.TypeMax + 1]atomic.Pointer[transport.PacketHandler]
	once      sync.Once
	done      <-chan struct{}
}

var _ transport.Port = (*Port)(nil)

// New starts delivering pc's packets; the Port owns pc.
func New(pc transport.PacketConn) *Port {
	p := &Port{pc: pc}
	if ap, err := netip.ParseAddrPort(pc.LocalAddr().String()); err == nil {
		p.local = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	p.done = Receive(pc, p.deliver)
	return p
}

// Receive hands every packet pc receives to h (which must not block and
// must copy what it keeps), through pc's SetHandler when it has one, else
// from a new goroutine that reads until pc is closed. The returned channel
// is closed when no more calls of h will start from a read goroutine.
func Receive(pc transport.PacketConn, h func(pkt []byte, from netip.AddrPort)) <-chan struct{} {
	done := make(chan struct{})
	if s, ok := pc.(interface {
		SetHandler(func([]byte, netip.AddrPort))
	}); ok {
		s.SetHandler(h)
		close(done)
		return done
	}
	go func() {
		defer close(done)
		buf := make([]byte, 9216)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					continue
				}
				return
			}
			h(buf[:n], netip.AddrPortFrom(from.Addr().Unmap(), from.Port()))
		}
	}()
	return done
}

func (p *Port) deliver(b []byte, from netip.AddrPort) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	var h *transport.PacketHandler
	switch {
	case len(b) == 0:
	case b[0] < transport.TypeMin:
		if len(b) >= 20 && binary.BigEndian.Uint32(b[4:]) == 0x2112A442 {
			h = p.stun.Load()
		} else if len(b) >= 2 && b[0] == 0 && b[1] == 2 {
			h = p.community.Load()
		}
	case b[0] <= transport.TypeMax:
		h = p.types[b[0]].Load()
	}
	if h != nil {
		(*h)(b, from)
	}
}

func store(s *atomic.Pointer[transport.PacketHandler], h transport.PacketHandler) {
	if h == nil {
		s.Store(nil)
		return
	}
	s.Store(&h)
}

// LocalAddr implements transport.Port.
func (p *Port) LocalAddr() netip.AddrPort { return p.local }

// WriteTo implements transport.Port.
func (p *Port) WriteTo(b []byte, to netip.AddrPort) error {
	_, err := p.pc.WriteToUDPAddrPort(b, to)
	return err
}

// HandleType implements transport.Port.
func (p *Port) HandleType(t byte, h transport.PacketHandler) {
	if t >= transport.TypeMin && t <= transport.TypeMax {
		store(&p.types[t], h)
	}
}

// HandleSTUN implements transport.Port.
func (p *Port) HandleSTUN(h transport.PacketHandler) { store(&p.stun, h) }

// HandleCommunity implements transport.Port.
func (p *Port) HandleCommunity(h transport.PacketHandler) { store(&p.community, h) }

// Close closes the conn and waits for the reader.
func (p *Port) Close() error {
	var err error
	p.once.Do(func() {
		err = p.pc.Close()
		<-p.done
	})
	return err
}
