package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	lconnmgr "github.com/libp2p/go-libp2p/core/connmgr"
	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	lhost "github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	lnoise "github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// libp2pOptions are the options of every go-libp2p host here, for QUIC or
// for TCP + Noise + yamux. Flow control is go-libp2p's own, which its
// public options do not change: QUIC windows up to 10 MiB per stream and
// 15 MiB per connection (quicreuse's config), yamux windows up to 16 MiB
// per stream. Beyond the transport options the hosts get a resource
// manager without limits and no connection manager: the defaults (scaled
// limits, a connection manager trimming above 192 connections) would
// refuse or close the many connections of the set-up and idle-session
// measurements; the resource manager still does its accounting.
func libp2pOptions(kind string, listen bool) ([]libp2p.Option, error) {
	key, err := newLibp2pKey()
	if err != nil {
		return nil, err
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(rcmgr.InfiniteLimits))
	if err != nil {
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(lconnmgr.NullConnMgr{}),
	}
	switch kind {
	case stackLibp2pQUIC:
		opts = append(opts, libp2p.Transport(libp2pquic.NewTransport))
		if listen {
			opts = append(opts, libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1"))
		}
	case stackLibp2pTCP:
		opts = append(opts,
			libp2p.Transport(tcp.NewTCPTransport),
			libp2p.Security(lnoise.ID, lnoise.New),
			libp2p.Muxer(yamux.ID, yamux.DefaultTransport))
		if listen {
			opts = append(opts, libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		}
	default:
		return nil, fmt.Errorf("unknown libp2p stack %q", kind)
	}
	if !listen {
		opts = append(opts, libp2p.NoListenAddrs)
	}
	return opts, nil
}

// newLibp2pKey makes an Ed25519 identity, the key type go-ipv8 uses too.
func newLibp2pKey() (lcrypto.PrivKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return lcrypto.UnmarshalEd25519PrivateKey(priv)
}

// libp2pServer is a go-libp2p host serving perf and echo; it counts the
// connections its swarm has completed (secured, muxed, peer authenticated).
type libp2pServer struct {
	h        lhost.Host
	accepted atomic.Int64
}

func newLibp2pServer(tb testing.TB, kind string) *libp2pServer {
	opts, err := libp2pOptions(kind, true)
	if err != nil {
		tb.Fatal(err)
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		tb.Fatalf("%s: %v", kind, err)
	}
	tb.Cleanup(func() { h.Close() })
	s := &libp2pServer{h: h}
	h.Network().Notify(&network.NotifyBundle{ConnectedF: func(network.Network, network.Conn) { s.accepted.Add(1) }})
	h.SetStreamHandler(perfProto, func(st network.Stream) {
		if servePerf(st) != nil {
			st.Reset()
		}
	})
	h.SetStreamHandler(echoProto, func(st network.Stream) {
		io.Copy(st, st)
		st.Close()
	})
	return s
}

func (s *libp2pServer) addrInfo() lpeer.AddrInfo {
	return lpeer.AddrInfo{ID: s.h.ID(), Addrs: s.h.Addrs()}
}

// libp2pClient is a fresh go-libp2p host that does not listen.
type libp2pClient struct {
	h   lhost.Host
	srv lpeer.AddrInfo
}

func newLibp2pClient(kind string, srv lpeer.AddrInfo) (*libp2pClient, error) {
	opts, err := libp2pOptions(kind, false)
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	return &libp2pClient{h: h, srv: srv}, nil
}

func (c *libp2pClient) connect(ctx context.Context) error { return c.h.Connect(ctx, c.srv) }

func (c *libp2pClient) echo(ctx context.Context) error {
	s, err := c.h.NewStream(ctx, c.srv.ID, echoProto)
	if err != nil {
		return err
	}
	defer s.Close()
	return echoOnce(s)
}

func (c *libp2pClient) close() { c.h.Close() }

// newLibp2pStack is go-libp2p over QUIC or TCP + Noise + yamux, through
// its public host API.
func newLibp2pStack(tb testing.TB, kind string) *stack {
	srv := newLibp2pServer(tb, kind)
	main, err := newLibp2pClient(kind, srv.addrInfo())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(main.close)
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	if err := main.connect(ctx); err != nil {
		tb.Fatalf("%s: %v", kind, err)
	}
	return &stack{
		name: kind,
		transfer: func(n uint64) (time.Duration, error) {
			s, err := main.h.NewStream(context.Background(), srv.h.ID(), perfProto)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", kind, err)
			}
			d, err := runPerf(s, n)
			if err != nil {
				s.Reset()
				return 0, fmt.Errorf("%s: %w", kind, err)
			}
			s.Close()
			return d, nil
		},
		newClient: func() (client, error) { return newLibp2pClient(kind, srv.addrInfo()) },
		accepted:  &srv.accepted,
	}
}
