package stun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/ipv8/go-ipv8/nat/internal/pcport"
	"github.com/ipv8/go-ipv8/transport"
)

// ServerConfig describes an RFC 5780 STUN server.
type ServerConfig struct {
	// Primary is the server's first IP address and port.
	Primary netip.AddrPort
	// Alternate is its second IP address and port. With it the server
	// listens on all four combinations and honours CHANGE-REQUEST; without
	// it (zero) it answers CHANGE-REQUEST with error 420.
	Alternate netip.AddrPort
	Software  string // SOFTWARE attribute (default "go-ipv8")
	Logger    *slog.Logger
}

// Server is an RFC 5389/5780 STUN server for Binding requests: it answers
// with XOR-MAPPED-ADDRESS (and MAPPED-ADDRESS for RFC 3489 clients),
// RESPONSE-ORIGIN and OTHER-ADDRESS, and honours CHANGE-REQUEST and
// RESPONSE-PORT.
type Server struct {
	cfg    ServerConfig
	conns  map[netip.AddrPort]transport.PacketConn
	once   sync.Once
	closed chan struct{}
}

// Listen opens the server's UDP sockets (four with an alternate address,
// one without).
func Listen(cfg ServerConfig) (*Server, error) {
	addrs, err := cfg.sockets()
	if err != nil {
		return nil, err
	}
	conns := make(map[netip.AddrPort]transport.PacketConn, len(addrs))
	for _, a := range addrs {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(a))
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, fmt.Errorf("stun: server listen on %s: %w", a, err)
		}
		conns[a] = c
	}
	return NewServer(cfg, conns)
}

// NewServer makes a server over sockets already open (such as
// internal/netsim hosts): conns must hold one socket for each of the
// addresses the configuration needs, keyed by its address.
func NewServer(cfg ServerConfig, conns map[netip.AddrPort]transport.PacketConn) (*Server, error) {
	addrs, err := cfg.sockets()
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if conns[a] == nil {
			return nil, fmt.Errorf("stun: server needs a socket on %s", a)
		}
	}
	if cfg.Software == "" {
		cfg.Software = Software
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Server{cfg: cfg, conns: conns, closed: make(chan struct{})}, nil
}

// sockets lists the addresses the server listens on.
func (cfg ServerConfig) sockets() ([]netip.AddrPort, error) {
	p, a := cfg.Primary, cfg.Alternate
	if !p.IsValid() || p.Port() == 0 {
		return nil, errors.New("stun: server needs a primary address with a port")
	}
	if !a.IsValid() {
		return []netip.AddrPort{p}, nil
	}
	if a.Addr() == p.Addr() || a.Port() == p.Port() || a.Port() == 0 || a.Addr().Is4() != p.Addr().Is4() {
		return nil, errors.New("stun: the alternate address needs another IP of the same family and another port")
	}
	return []netip.AddrPort{p,
		netip.AddrPortFrom(p.Addr(), a.Port()),
		netip.AddrPortFrom(a.Addr(), p.Port()),
		a}, nil
}

// Addrs lists the addresses the server answers on.
func (s *Server) Addrs() []netip.AddrPort {
	a, _ := s.cfg.sockets()
	return a
}

// Serve answers requests until ctx ends or Close is called; it closes the
// sockets when it returns.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	var dones []<-chan struct{}
	for local, c := range s.conns {
		addrs := serverAddrs{local: local, primary: s.cfg.Primary, alt: s.cfg.Alternate}
		dones = append(dones, pcport.Receive(c, func(pkt []byte, from netip.AddrPort) { s.handle(addrs, pkt, from) }))
	}
	for _, d := range dones {
		<-d
	}
	select {
	case <-ctx.Done():
	case <-s.closed:
	}
	return ctx.Err()
}

// Close closes the sockets; Serve returns.
func (s *Server) Close() error {
	s.once.Do(func() {
		close(s.closed)
		for _, c := range s.conns {
			c.Close()
		}
	})
	return nil
}

// handle answers one packet that arrived on the socket at addrs.local.
func (s *Server) handle(addrs serverAddrs, pkt []byte, from netip.AddrPort) {
	if !IsSTUN(pkt) {
		return
	}
	r, ok := answer(pkt, from, addrs, s.cfg.Software)
	if !ok {
		return
	}
	out := s.conns[addrs.socket(r.changeIP, r.changePort)]
	if _, err := out.WriteToUDPAddrPort(r.pkt, r.to); err != nil {
		s.cfg.Logger.Debug("stun server: write", "to", r.to, "err", err)
	}
}
