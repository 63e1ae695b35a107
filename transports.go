package ipv8

import (
	"fmt"
	"net/netip"

	"github.com/ipv8/go-ipv8/mux/reliable"
	"github.com/ipv8/go-ipv8/security/noise"
	"github.com/ipv8/go-ipv8/transport"
	quictransport "github.com/ipv8/go-ipv8/transport/quic"
	"github.com/ipv8/go-ipv8/transport/udp"
)

// openPort opens the host's one UDP port: on the given packet conn, or on
// kernel sockets at the listen address (falling back from the dual-stack
// wildcard to IPv4 when the machine has no IPv6).
func openPort(cfg *Config) (*udp.Port, error) {
	pcfg := udp.Config{DisableSteering: cfg.DisableSteering, Logger: cfg.Logger}
	if cfg.PacketConn != nil {
		return udp.NewPort(cfg.PacketConn, pcfg), nil
	}
	addr, err := portAddr(cfg.ListenAddrs)
	if err != nil {
		return nil, err
	}
	pcfg.Addr = addr
	p, err := udp.Listen(pcfg)
	if err != nil && addr.Addr() == netip.IPv6Unspecified() {
		pcfg.Addr = netip.AddrPortFrom(netip.IPv4Unspecified(), addr.Port())
		p, err = udp.Listen(pcfg)
	}
	if err != nil {
		return nil, fmt.Errorf("ipv8: opening UDP port %s: %w", addr, err)
	}
	return p, nil
}

// newTransport builds the named transport on the port. The raw-UDP one
// dials relayed addresses through trav, which routes the circuits' Noise
// packets to its security transport.
func newTransport(name string, cfg *Config, port *udp.Port, trav *traversal) (transport.Transport, error) {
	switch name {
	case QUIC:
		return quictransport.New(cfg.Key, port.QUICConn(), quictransport.Config{Logger: cfg.Logger})
	case UDP:
		// Noise sessions on the port's own packet types, reliable streams
		// over them from one event loop, composed by udp.Transport.
		sec, err := noise.New(cfg.Key, port, noise.Config{Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
		laddr, err := transport.FromAddrPort(port.LocalAddr(), "/ipv8")
		if err != nil {
			sec.Close()
			return nil, err
		}
		mx := reliable.New(reliable.Config{LocalAddr: laddr, Logger: cfg.Logger})
		t, err := udp.NewTransport(cfg.Key, port, sec, mx, udp.TransportConfig{Logger: cfg.Logger, Circuits: trav})
		if err != nil {
			mx.Close()
			sec.Close()
			return nil, err
		}
		trav.setNoise(sec)
		return t, nil
	}
	return nil, fmt.Errorf("ipv8: transport %q is not available", name)
}
