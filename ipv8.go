// Package ipv8 builds a go-ipv8 Host: a peer that others reach by its
// public key, securely, through NATs, across address changes.
//
//	h, err := ipv8.New()                         // every default
//	h, err := ipv8.New(ipv8.DataDir("~/.myapp"), ipv8.ListenAddrs("/ip4/0.0.0.0/udp/4242"))
//	h, err := ipv8.New(ipv8.Relays("/ip4/203.0.113.7/udp/4000/ipv8/p2p/12D3KooW…")) // reachable behind a NAT
//
// New applies the caller's options, then the defaults table (defaults.go)
// for whatever the caller left unset, opens the host's one UDP port, builds
// the transports on it and returns the Host.
package ipv8

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipv8/go-ipv8/host"
	"github.com/ipv8/go-ipv8/nat/relay"
	"github.com/ipv8/go-ipv8/nat/stun"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
)

// Version is the library's version, announced in the agent string.
const Version = "0.1.0"

// Transport names for the Transports option and the CLI's --transport.
const (
	QUIC = "quic" // QUIC (quic-go) with libp2p's TLS identity scheme
	UDP  = "udp"  // Noise sessions and reliable streams over raw UDP
)

// Config is what New builds a host from. Options set it; defaults fill
// what they left unset.
type Config struct {
	Key             *peer.PrivateKey
	DataDir         string
	ListenAddrs     []ma.Multiaddr
	Transports      []string
	Bootstrap       []peer.AddrInfo
	Logger          *slog.Logger
	PacketConn      transport.PacketConn
	DisableSteering bool
	AgentVersion    string
	PeerstoreSize   int
	DialTimeout     time.Duration
	DialStagger     time.Duration
	disableIdentify bool

	// NAT traversal (traversal.go).
	Relays          []peer.AddrInfo // relays to hold a reservation at
	RelayService    bool            // relay for others
	RelayLimits     relay.Limits    // the relay service's limits (zero fields: nat/relay's defaults)
	DisablePunching bool
	STUNServers     []netip.AddrPort // for describing this host to a punch, besides the relays
	MappingLifetime time.Duration    // measured NAT mapping lifetime (0: unknown)
	PunchSockets    func(n int) ([]transport.PacketConn, error)
}

// Option sets part of the Config.
type Option func(*Config) error

// Identity makes the host use key.
func Identity(key *peer.PrivateKey) Option {
	return func(c *Config) error {
		if key == nil {
			return errors.New("ipv8: Identity(nil)")
		}
		c.Key = key
		return nil
	}
}

// DataDir keeps the host's state (its identity key, 0600) in dir; the
// identity survives restarts.
func DataDir(dir string) Option {
	return func(c *Config) error { c.DataDir = dir; return nil }
}

// ListenAddrs sets where the host's UDP port is bound, as multiaddrs
// ("/ip4/0.0.0.0/udp/4242", optionally with /quic-v1 or /ipv8). A host has
// one UDP port: give one address, or an IPv4 and an IPv6 wildcard with the
// same port number (one dual-stack socket).
func ListenAddrs(addrs ...string) Option {
	return func(c *Config) error {
		for _, s := range addrs {
			m, err := ma.NewMultiaddr(s)
			if err != nil {
				return fmt.Errorf("ipv8: listen address %q: %w", s, err)
			}
			c.ListenAddrs = append(c.ListenAddrs, m)
		}
		return nil
	}
}

// Transports chooses the transports by name (QUIC, UDP); the first is
// preferred when a peer offers several.
func Transports(names ...string) Option {
	return func(c *Config) error {
		for _, n := range names {
			if n != QUIC && n != UDP {
				return fmt.Errorf("ipv8: unknown transport %q (have %q, %q)", n, QUIC, UDP)
			}
		}
		c.Transports = append(c.Transports, names...)
		return nil
	}
}

// Bootstrap connects to these peers when the host starts, and keeps their
// addresses for good. Each is a multiaddr ending in /p2p/ID.
func Bootstrap(addrs ...string) Option {
	return func(c *Config) error {
		for _, s := range addrs {
			ai, err := peer.AddrInfoFromString(s)
			if err != nil {
				return fmt.Errorf("ipv8: bootstrap peer: %w", err)
			}
			c.Bootstrap = append(c.Bootstrap, *ai)
		}
		return nil
	}
}

// BootstrapPeers is Bootstrap for parsed AddrInfos.
func BootstrapPeers(ais ...peer.AddrInfo) Option {
	return func(c *Config) error { c.Bootstrap = append(c.Bootstrap, ais...); return nil }
}

// Logger makes the host log to l.
func Logger(l *slog.Logger) Option {
	return func(c *Config) error { c.Logger = l; return nil }
}

// WithPacketConn runs the host's port on pc instead of kernel sockets (for
// internal/netsim and tests). The host closes pc.
func WithPacketConn(pc transport.PacketConn) Option {
	return func(c *Config) error { c.PacketConn = pc; return nil }
}

// DisableSteering makes the port demultiplex QUIC in user space even where
// the kernel could steer it (for comparison and debugging).
func DisableSteering() Option {
	return func(c *Config) error { c.DisableSteering = true; return nil }
}

// AgentVersion sets the agent string identify announces.
func AgentVersion(s string) Option {
	return func(c *Config) error { c.AgentVersion = s; return nil }
}

// PeerstoreSize bounds how many peers the peerstore remembers.
func PeerstoreSize(n int) Option {
	return func(c *Config) error { c.PeerstoreSize = n; return nil }
}

// DialTimeout bounds one connection attempt to a peer.
func DialTimeout(d time.Duration) Option {
	return func(c *Config) error { c.DialTimeout = d; return nil }
}

// Relays makes the host hold a reservation at each of these relays, so
// that peers reach it through them when its NAT lets nobody in: each is a
// multiaddr ending in /p2p/ID ("/ip4/R/udp/N/ipv8/p2p/12D3KooW…"). With a
// reservation the host advertises /ip4/R/udp/N/ipv8/p2p/RELAY/p2p-circuit
// in Addrs (and so in identify); a Conn that peers open through it starts
// relayed and moves to a direct path when a hole punch succeeds.
func Relays(addrs ...string) Option {
	return func(c *Config) error {
		for _, s := range addrs {
			ai, err := peer.AddrInfoFromString(s)
			if err != nil {
				return fmt.Errorf("ipv8: relay %q: %w", s, err)
			}
			if len(ai.Addrs) != 1 {
				return fmt.Errorf("ipv8: relay %q: want one address ending in /p2p/ID", s)
			}
			if _, _, err := transport.ToAddrPort(ai.Addrs[0]); err != nil {
				return fmt.Errorf("ipv8: relay %q: %w", s, err)
			}
			c.Relays = append(c.Relays, *ai)
		}
		return nil
	}
}

// EnableRelayService makes the host relay datagrams for peers that cannot
// reach each other, within nat/relay's default limits (RelayServiceLimits
// changes them). Off by default for hosts; `ipv8 relay` turns it on. The
// relay forwards sealed packets and sees only ciphertext.
func EnableRelayService() Option {
	return func(c *Config) error { c.RelayService = true; return nil }
}

// RelayServiceLimits sets the relay service's limits (reservations in
// total and per IP, circuits in total, per peer and per IP, and each
// circuit's duration, bytes and idle time; zero fields keep their
// defaults) and turns the service on.
func RelayServiceLimits(l relay.Limits) Option {
	return func(c *Config) error { c.RelayService, c.RelayLimits = true, l; return nil }
}

// DisableHolePunching keeps relayed Conns on their relay: no punch is
// tried or answered.
func DisableHolePunching() Option {
	return func(c *Config) error { c.DisablePunching = true; return nil }
}

// STUNServers are asked, besides the relays, for this host's public
// address and mapping behaviour when it punches a hole ("IP:PORT"; every
// go-ipv8 host answers STUN). Servers at two IP addresses tell an
// endpoint-independent NAT from one that maps per destination, which lets
// punching pick port prediction or a birthday punch.
func STUNServers(addrs ...string) Option {
	return func(c *Config) error {
		for _, s := range addrs {
			ap, err := netip.ParseAddrPort(s)
			if err != nil {
				return fmt.Errorf("ipv8: STUN server %q: %w", s, err)
			}
			c.STUNServers = append(c.STUNServers, ap)
		}
		return nil
	}
}

// NATMappingLifetime tells the host how long its NAT keeps an idle UDP
// mapping (as `ipv8 nat --lifetime` measures it): punched paths and relay
// reservations are kept alive at nat.KeepaliveInterval of it.
func NATMappingLifetime(d time.Duration) Option {
	return func(c *Config) error { c.MappingLifetime = d; return nil }
}

// PunchSockets supplies the extra UDP sockets a birthday punch opens on
// the hard side (for a host on WithPacketConn, which has no kernel
// sockets: without it such a host does not open any, and those punches
// fail to the relay).
func PunchSockets(listen func(n int) ([]transport.PacketConn, error)) Option {
	return func(c *Config) error { c.PunchSockets = listen; return nil }
}

// New builds and starts a Host.
func New(opts ...Option) (*host.Host, error) {
	var cfg Config
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if err := applyDefaults(&cfg); err != nil {
		return nil, err
	}
	return build(&cfg)
}

// build opens the port and the transports and starts the host.
func build(cfg *Config) (*host.Host, error) {
	port, err := openPort(cfg)
	if err != nil {
		return nil, err
	}
	// Every host answers STUN Binding requests on its port, so peers serve
	// as each other's STUN servers.
	stunEP := stun.Attach(port, stun.EndpointConfig{Logger: cfg.Logger})
	var transports []transport.Transport
	var trav *traversal
	closeAll := func() {
		for _, t := range transports {
			t.Close()
		}
		if trav != nil {
			trav.Close()
		}
		stunEP.Close()
		port.Close()
	}
	trav, err = newTraversal(cfg, port, stunEP)
	if err != nil {
		closeAll()
		return nil, err
	}
	for _, name := range cfg.Transports {
		t, err := newTransport(name, cfg, port, trav)
		if err != nil {
			closeAll()
			return nil, err
		}
		transports = append(transports, t)
	}
	h, err := host.New(host.Config{
		Key:             cfg.Key,
		Transports:      transports,
		Port:            port,
		Peerstore:       host.NewPeerstore(cfg.PeerstoreSize),
		AgentVersion:    cfg.AgentVersion,
		DialTimeout:     cfg.DialTimeout,
		DialStagger:     cfg.DialStagger,
		Logger:          cfg.Logger,
		Closers:         []func() error{trav.Close, stunEP.Close, port.Close},
		DisableIdentify: cfg.disableIdentify,
		NAT:             trav,
	})
	if err != nil {
		closeAll()
		return nil, err
	}
	for _, ai := range cfg.Bootstrap {
		h.Peerstore().AddAddrs(ai.ID, ai.Addrs, host.PermanentAddrTTL)
	}
	if len(cfg.Bootstrap) > 0 {
		go bootstrap(h, cfg.Bootstrap)
	}
	return h, nil
}

// bootstrap connects to the bootstrap peers once, in the background.
func bootstrap(h *host.Host, peers []peer.AddrInfo) {
	for _, ai := range peers {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := h.Connect(ctx, ai); err != nil {
			h.Logger().Info("bootstrap peer unreachable", "peer", ai.ID, "err", err)
		}
		cancel()
	}
}

// portAddr reduces the listen addresses to the one UDP address the port
// binds: a single address as given, or the dual-stack wildcard [::]:N for
// an IPv4 and an IPv6 wildcard with the same port.
func portAddr(addrs []ma.Multiaddr) (netip.AddrPort, error) {
	var aps []netip.AddrPort
	for _, m := range addrs {
		ap, _, err := transport.ToAddrPort(m)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("ipv8: listen address %s: %w", m, err)
		}
		aps = append(aps, ap)
	}
	switch {
	case len(aps) == 0:
		return netip.AddrPort{}, errors.New("ipv8: no listen address")
	case len(aps) == 1:
		return aps[0], nil
	case len(aps) == 2 && aps[0].Port() == aps[1].Port() &&
		aps[0].Addr().IsUnspecified() && aps[1].Addr().IsUnspecified() && aps[0].Addr().Is4() != aps[1].Addr().Is4():
		return netip.AddrPortFrom(netip.IPv6Unspecified(), aps[0].Port()), nil
	}
	return netip.AddrPort{}, fmt.Errorf("ipv8: a host has one UDP port: give one listen address, or an IPv4 and an IPv6 wildcard with the same port (got %v)", addrs)
}
