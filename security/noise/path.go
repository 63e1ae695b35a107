package noise

import (
	"net/netip"
	"sync/atomic"

	"github.com/ipv8/go-ipv8/security"
	"github.com/ipv8/go-ipv8/transport"
)

// Path is where a session's packets go: security.Path (the interface
// lives there so that transports can dial over a path without importing
// this package). The port's direct path is built in; a relay implements
// Path by wrapping each packet in its own header, and hands the packets it
// unwraps to Transport.HandleVia.
type Path = security.Path

// directPath sends straight to the peer's address from the port.
type directPath struct {
	port transport.Port
	addr netip.AddrPort
}

func (p *directPath) WritePacket(pkt []byte) error    { return p.port.WriteTo(pkt, p.addr) }
func (p *directPath) Addr() netip.AddrPort            { return p.addr }
func (p *directPath) Kind() transport.PathKind        { return transport.PathDirect }
func (p *directPath) Overhead() int                   { return 0 }
func (p *directPath) sameAs(addr netip.AddrPort) bool { return p.addr == addr }

// pathState is a Path with what the session knows of it: whether the peer
// proved it receives there (validated), and for an unvalidated path the
// bytes received from and sent to it, so that no more than three times the
// bytes received are sent (anti-amplification).
type pathState struct {
	p         Path
	direct    *directPath // p, when it is direct (fast comparisons)
	validated atomic.Bool
	recvBytes atomic.Uint64
	sentBytes atomic.Uint64
}

func newPathState(p Path) *pathState {
	ps := &pathState{p: p}
	ps.direct, _ = p.(*directPath)
	return ps
}

// matches reports whether a packet from addr (via, when it came over a
// relay) arrived over this path.
func (ps *pathState) matches(addr netip.AddrPort, via Path) bool {
	if via != nil {
		return ps.p == via
	}
	return ps.direct != nil && ps.direct.addr == addr
}

// budget reports how many more bytes may be sent to an unvalidated path.
func (ps *pathState) budget() int64 {
	if ps.validated.Load() {
		return 1 << 62
	}
	return int64(amplificationFactor*ps.recvBytes.Load()) - int64(ps.sentBytes.Load())
}
