package labtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/mux/reliable"
	"github.com/ipv8/go-ipv8/nat"
	"github.com/ipv8/go-ipv8/nat/punch"
	"github.com/ipv8/go-ipv8/nat/relay"
	"github.com/ipv8/go-ipv8/nat/stun"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/security"
	"github.com/ipv8/go-ipv8/security/noise"
	"github.com/ipv8/go-ipv8/transport"
	"github.com/ipv8/go-ipv8/transport/udp"
)

// node is one host as the stack wires it: its port, STUN (answering and
// asking), the relay protocol, the Puncher, and (when asked for) Noise
// sessions with reliable streams over them (the raw-UDP transport).
type node struct {
	name  string
	key   *peer.PrivateKey
	port  transport.Port
	stun  *stun.Endpoint
	relay *relay.Endpoint
	punch *punch.Puncher
	noise *noise.Transport
	tr    *udp.Transport
	ln    transport.Listener

	circuits chan *relay.Circuit // accepted circuits, routed
	closers  []func()
}

type nodeConfig struct {
	name string
	port transport.Port
	// closePort closes port when the node closes.
	closePort func() error
	serve     bool // relay for others
	limits    relay.Limits
	// stunServers and filtering feed punch.Observe.
	stunServers []netip.AddrPort
	filtering   nat.Behavior
	listenAux   func(n int) ([]transport.PacketConn, error)
	budget      punch.Budget
	keepalive   time.Duration
	noise       bool // Noise sessions (Dial/Accept on the Noise transport)
	sessions    bool // Noise + reliable streams + the raw-UDP transport
}

func newKey(t testing.TB) *peer.PrivateKey {
	t.Helper()
	k, err := peer.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newNode(t testing.TB, cfg nodeConfig) *node {
	t.Helper()
	n := &node{name: cfg.name, key: newKey(t), port: cfg.port, circuits: make(chan *relay.Circuit, 16)}
	if cfg.closePort != nil {
		n.closers = append(n.closers, func() { cfg.closePort() })
	}
	n.stun = stun.Attach(cfg.port, stun.EndpointConfig{AnswerRate: 10000})
	n.closers = append(n.closers, func() { n.stun.Close() })
	var err error
	n.relay, err = relay.New(cfg.port, n.key, relay.Config{Serve: cfg.serve, Limits: cfg.limits, Keepalive: cfg.keepalive})
	if err != nil {
		t.Fatal(err)
	}
	n.closers = append(n.closers, func() { n.relay.Close() })
	servers, filtering := cfg.stunServers, cfg.filtering
	n.punch, err = punch.New(cfg.port, punch.Config{
		Budget:    cfg.budget,
		ListenAux: cfg.listenAux,
		Keepalive: cfg.keepalive,
		Self: func(ctx context.Context) (punch.Info, error) {
			return punch.Observe(ctx, n.stun, servers, filtering)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.closers = append(n.closers, func() { n.punch.Close() })
	if cfg.noise || cfg.sessions {
		n.noise, err = noise.New(n.key, cfg.port, noise.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if !cfg.sessions {
			n.closers = append(n.closers, func() { n.noise.Close() })
		}
	}
	if cfg.sessions {
		mx := reliable.New(reliable.Config{})
		n.tr, err = udp.NewTransport(n.key, cfg.port, n.noise, mx, udp.TransportConfig{})
		if err != nil {
			t.Fatal(err)
		}
		n.ln, err = n.tr.Listen()
		if err != nil {
			t.Fatal(err)
		}
		n.closers = append(n.closers, func() { n.tr.Close() })
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := n.relay.Accept(ctx)
			if err != nil {
				return
			}
			n.route(c)
			select {
			case n.circuits <- c:
			default:
			}
		}
	})
	n.closers = append(n.closers, func() { cancel(); wg.Wait() })
	t.Cleanup(n.close)
	return n
}

// close stops everything in reverse order (idempotent).
func (n *node) close() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
	n.closers = nil
}

// route sends what crosses a circuit to its owner: punch coordination to
// the Puncher, Noise packets to the Noise transport.
func (n *node) route(c *relay.Circuit) {
	c.SetHandler(func(pkt []byte) {
		if len(pkt) == 0 {
			return
		}
		switch {
		case pkt[0] == transport.TypePunch:
			n.punch.HandleSignal(pkt, c)
		case n.noise != nil && pkt[0] >= transport.TypeNoiseInitiation && pkt[0] <= transport.TypeNoiseData:
			n.noise.HandleVia(pkt, c)
		}
	})
}

// sessionPath is what a session should use for a punched path: the Noise
// transport's own direct path when the punch went through the port; the
// punched path itself (its packets handed to Noise) when it went through
// an extra socket.
func (n *node) sessionPath(p *punch.Path) noise.Path {
	if p.OnPort() {
		return n.noise.DirectPath(p.Addr())
	}
	p.SetHandler(func(pkt []byte) {
		if len(pkt) > 0 && pkt[0] >= transport.TypeNoiseInitiation && pkt[0] <= transport.TypeNoiseData {
			n.noise.HandleVia(pkt, p)
		}
	})
	return p
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// circuitTo opens a circuit from a to b through the relay at r (b
// reserves first) and returns both ends, routed.
func circuitTo(ctx context.Context, r netip.AddrPort, a, b *node) (*relay.Circuit, *relay.Circuit, error) {
	if _, err := b.relay.Reserve(ctx, r); err != nil {
		return nil, nil, err
	}
	ca, err := a.relay.Connect(ctx, r, b.key.ID())
	if err != nil {
		return nil, nil, err
	}
	a.route(ca)
	select {
	case cb := <-b.circuits:
		return ca, cb, nil
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

// exchange opens a Noise session from a to b over p (IK, the first flight
// carrying a datagram) and checks that a datagram crosses each way.
func exchange(ctx context.Context, a, b *node, p noise.Path) error {
	type res struct {
		s   security.Session
		err error
	}
	accepted := make(chan res, 1)
	go func() {
		s, err := b.noise.Accept(ctx)
		accepted <- res{s, err}
	}()
	sa, err := a.noise.DialPath(ctx, p, b.key.ID(), []byte("ping"))
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer sa.Close()
	r := <-accepted
	if r.err != nil {
		return fmt.Errorf("accept: %w", r.err)
	}
	defer r.s.Close()
	got := make(chan string, 4)
	r.s.SetReceiver(func(b []byte) { got <- string(b) })
	sa.SetReceiver(func(b []byte) { got <- string(b) })
	select {
	case m := <-got:
		if m != "ping" {
			return fmt.Errorf("b got %q", m)
		}
	case <-ctx.Done():
		return fmt.Errorf("early data: %w", ctx.Err())
	}
	if err := r.s.Send([]byte("pong")); err != nil {
		return err
	}
	select {
	case m := <-got:
		if m != "pong" {
			return fmt.Errorf("a got %q", m)
		}
	case <-ctx.Done():
		return fmt.Errorf("answer: %w", ctx.Err())
	}
	return nil
}
