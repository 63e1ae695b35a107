package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	ipv8 "github.com/ipv8/go-ipv8"
	"github.com/ipv8/go-ipv8/host"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocols/perf"
	"github.com/ipv8/go-ipv8/transport"
)

// quiet keeps the hosts' logs (identify towards peers that do not speak it,
// closes) out of benchmark output.
var quiet = slog.New(slog.DiscardHandler)

// newIPv8Host is a go-ipv8 host on loopback with only the named transport.
// go-ipv8's flow control is its own defaults: QUIC 512 KiB growing to
// 16 MiB per stream and 768 KiB to 24 MiB per connection; the UDP
// transport's mux grows its windows with the measured bandwidth-delay
// product up to 64 MiB per stream and 96 MiB per connection.
func newIPv8Host(name string, opts ...ipv8.Option) (*host.Host, error) {
	base := []ipv8.Option{ipv8.ListenAddrs("/ip4/127.0.0.1/udp/0"), ipv8.Transports(name), ipv8.Logger(quiet)}
	return ipv8.New(append(base, opts...)...)
}

// udpUnavailable says why go-ipv8's raw-UDP transport cannot be measured,
// or "" when it can: its benchmarks run the moment
// ipv8.New(ipv8.Transports(ipv8.UDP)) stops returning an error.
func udpUnavailable() string {
	h, err := newIPv8Host(ipv8.UDP)
	if err != nil {
		return fmt.Sprintf("SKIP %s: go-ipv8's raw-UDP transport is not available yet: ipv8.New(ipv8.Transports(ipv8.UDP)): %v", stackIPv8UDP, err)
	}
	h.Close()
	return ""
}

// ipv8Server is a go-ipv8 host serving perf and echo; it counts the
// connections the host has taken in (authenticated by the transport).
type ipv8Server struct {
	h        *host.Host
	accepted atomic.Int64
}

func newIPv8Server(tb testing.TB, name string) (*ipv8Server, error) {
	h, err := newIPv8Host(name)
	if err != nil {
		return nil, err
	}
	tb.Cleanup(func() { h.Close() })
	s := &ipv8Server{h: h}
	sub := h.Subscribe(1 << 16)
	go func() {
		for ev := range sub.C {
			if _, ok := ev.(host.EvtPeerConnected); ok {
				s.accepted.Add(1)
			}
		}
	}()
	tb.Cleanup(sub.Close)
	perf.Register(h)
	h.SetStreamHandler(echoProto, func(s transport.Stream) {
		io.Copy(s, s)
		s.Close()
	})
	return s, nil
}

// ipv8Client is a fresh go-ipv8 host: its own identity and UDP port.
type ipv8Client struct {
	h   *host.Host
	srv peer.AddrInfo
	// early makes the first stream dial with 0-RTT (host.WithEarlyData).
	early bool
}

func newIPv8Client(name string, srv peer.AddrInfo, opts ...ipv8.Option) (*ipv8Client, error) {
	h, err := newIPv8Host(name, opts...)
	if err != nil {
		return nil, err
	}
	return &ipv8Client{h: h, srv: srv}, nil
}

func (c *ipv8Client) connect(ctx context.Context) error {
	if c.early {
		// The connection is made by the first stream, with 0-RTT.
		c.h.Peerstore().AddAddrs(c.srv.ID, c.srv.Addrs, host.TempAddrTTL)
		return nil
	}
	return c.h.Connect(ctx, c.srv)
}

func (c *ipv8Client) echo(ctx context.Context) error {
	if c.early {
		ctx = host.WithEarlyData(ctx)
	}
	s, err := c.h.NewStream(ctx, c.srv.ID, echoProto)
	if err != nil {
		return err
	}
	defer s.Close()
	return echoOnce(s)
}

func (c *ipv8Client) close() { c.h.Close() }

// newIPv8EarlyStack is go-ipv8's raw-UDP transport through the Host with
// 0-RTT (host.WithEarlyData): the first stream rides in the handshake's
// first flight. It only makes sense for the connect measurement.
func newIPv8EarlyStack(tb testing.TB) (*stack, error) {
	srv, err := newIPv8Server(tb, ipv8.UDP)
	if err != nil {
		return nil, err
	}
	return &stack{
		name: stackIPv8UDP0RTT,
		newClient: func() (client, error) {
			c, err := newIPv8Client(ipv8.UDP, srv.h.AddrInfo())
			if err != nil {
				return nil, err
			}
			c.early = true
			return c, nil
		},
		accepted: &srv.accepted,
	}, nil
}

// newIPv8Stack is go-ipv8 through its Host API with only the named
// transport (ipv8.QUIC or ipv8.UDP).
func newIPv8Stack(tb testing.TB, label, name string) (*stack, error) {
	srv, err := newIPv8Server(tb, name)
	if err != nil {
		return nil, err
	}
	main, err := newIPv8Client(name, srv.h.AddrInfo())
	if err != nil {
		return nil, err
	}
	tb.Cleanup(main.close)
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	if err := main.connect(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	return &stack{
		name: label,
		transfer: func(n uint64) (time.Duration, error) {
			s, err := main.h.NewStream(context.Background(), srv.h.ID(), perf.ID)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", label, err)
			}
			d, err := runPerf(s, n)
			if err != nil {
				s.Reset(transport.CodeInternal)
				return 0, fmt.Errorf("%s: %w", label, err)
			}
			s.Close()
			return d, nil
		},
		newClient: func() (client, error) { return newIPv8Client(name, srv.h.AddrInfo()) },
		accepted:  &srv.accepted,
	}, nil
}
