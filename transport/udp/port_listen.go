package udp

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// errSteeringUnsupported means the system has no kernel steering; the port
// uses the user-space demux without a warning.
var errSteeringUnsupported = errors.New("udp: kernel steering needs Linux SO_ATTACH_REUSEPORT_CBPF")

// steerError is a failure to set up steering (as opposed to a failure to
// bind the address): Listen falls back to the user-space demux and warns.
type steerError struct{ err error }

func (e *steerError) Error() string { return "udp: kernel steering: " + e.err.Error() }
func (e *steerError) Unwrap() error { return e.err }

// network picks the socket family for addr: the unspecified IPv6 address
// gets a dual-stack socket, IPv4 (or IPv4-mapped) addresses an IPv4 one.
func network(addr netip.AddrPort) (string, netip.AddrPort) {
	a := addr.Addr()
	switch {
	case a.Is4() || a.Is4In6():
		return "udp4", netip.AddrPortFrom(a.Unmap(), addr.Port())
	case a == netip.IPv6Unspecified():
		return "udp", addr
	default:
		return "udp6", addr
	}
}

// listenUDP opens one kernel socket on addr with cfg's buffer sizes.
func listenUDP(cfg Config, addr netip.AddrPort) (*net.UDPConn, error) {
	netw, addr := network(addr)
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(context.Background(), netw, addr.String())
	if err != nil {
		return nil, err
	}
	c := pc.(*net.UDPConn)
	setBuffers(c, cfg.ReadBuffer, cfg.WriteBuffer)
	return c, nil
}
