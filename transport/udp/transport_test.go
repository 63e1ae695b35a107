package udp

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipv8/go-ipv8/internal/netsim"
	"github.com/ipv8/go-ipv8/mux/reliable"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocol"
	"github.com/ipv8/go-ipv8/security"
	"github.com/ipv8/go-ipv8/security/noise"
	"github.com/ipv8/go-ipv8/transport"
)

// End-to-end tests of the raw-UDP transport with the real security
// (security/noise) and mux (mux/reliable) implementations, wired as the
// root package wires them.

type stack struct {
	key  *peer.PrivateKey
	port *Port
	sec  *noise.Transport
	tr   *Transport
	ln   transport.Listener
}

func newStack(t testing.TB, port *Port) *stack {
	t.Helper()
	return newStackWith(t, port, noise.Config{})
}

// newStackWith is newStack with the Noise transport configured by cfg.
func newStackWith(t testing.TB, port *Port, cfg noise.Config) *stack {
	t.Helper()
	key, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := noise.New(key, port, cfg)
	if err != nil {
		t.Fatal(err)
	}
	laddr, _ := transport.FromAddrPort(port.LocalAddr(), "/ipv8")
	tr, err := NewTransport(key, port, sec, reliable.New(reliable.Config{LocalAddr: laddr}), TransportConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tr.Listen()
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{key: key, port: port, sec: sec, tr: tr, ln: ln}
	t.Cleanup(func() { tr.Close(); port.Close() })
	return s
}

func loopbackStack(t testing.TB) *stack {
	t.Helper()
	p, err := Listen(Config{Addr: netip.MustParseAddrPort("127.0.0.1:0")})
	if err != nil {
		t.Fatal(err)
	}
	return newStack(t, p)
}

func (s *stack) id() peer.ID { return s.key.ID() }

func (s *stack) maddr(t testing.TB) ma.Multiaddr {
	m, err := transport.FromAddrPort(s.port.LocalAddr(), "/ipv8")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// echo serves every stream of every inbound Conn of s by copying it back.
func (s *stack) echo(t testing.TB) {
	go func() {
		for {
			c, err := s.ln.Accept(context.Background())
			if err != nil {
				return
			}
			go serveEcho(c)
		}
	}()
}

func serveEcho(c transport.Conn) {
	for {
		st, err := c.AcceptStream(context.Background())
		if err != nil {
			return
		}
		go func() {
			io.Copy(st, st)
			st.CloseWrite()
		}()
	}
}

// roundTrip writes data on a new stream and checks that it comes back whole.
func roundTrip(t *testing.T, c transport.Conn, data []byte) {
	t.Helper()
	st, err := c.OpenStream(testCtx(t, 30*time.Second), protocol.ID("/echo/1"))
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(60 * time.Second))
	errc := make(chan error, 1)
	go func() {
		_, err := st.Write(data)
		if err == nil {
			err = st.CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(st)
	if err != nil {
		t.Fatalf("read: %v (got %d of %d bytes)", err, len(got), len(data))
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echo differs: %d bytes back for %d", len(got), len(data))
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestTransportDialByIDCarriesStreams(t *testing.T) {
	a, b := loopbackStack(t), loopbackStack(t)
	b.echo(t)
	c, err := a.tr.Dial(testCtx(t, 10*time.Second), b.maddr(t), b.id())
	if err != nil {
		t.Fatal(err)
	}
	if c.RemotePeer() != b.id() || c.LocalPeer() != a.id() || c.Transport() != "udp" {
		t.Fatalf("conn: remote %s local %s transport %q", c.RemotePeer(), c.LocalPeer(), c.Transport())
	}
	if !c.RemotePublicKey().Equal(b.key.Public()) {
		t.Fatal("remote public key differs from b's")
	}
	if _, err := c.RemoteMultiaddr().ValueForProtocol(peer.P_IPV8); err != nil {
		t.Fatalf("remote multiaddr %s lacks /ipv8", c.RemoteMultiaddr())
	}
	roundTrip(t, c, []byte("hello"))
	roundTrip(t, c, randomBytes(1<<20))
	// Dialling again reuses the Conn (one session per peer).
	again, err := a.tr.Dial(testCtx(t, 10*time.Second), b.maddr(t), b.id())
	if err != nil || again != c {
		t.Fatalf("second dial: %v, same conn %v", err, again == c)
	}
	if got := a.sec.Stats().HandshakesInitiated; got != 1 {
		t.Fatalf("%d handshakes for one peer", got)
	}
}

func TestTransportDialByAddressOnly(t *testing.T) {
	a, b := loopbackStack(t), loopbackStack(t)
	b.echo(t)
	c, err := a.tr.Dial(testCtx(t, 10*time.Second), b.maddr(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.RemotePeer() != b.id() {
		t.Fatal("XX dial learnt the wrong identity")
	}
	roundTrip(t, c, []byte("by address"))
}

func TestTransportDialWrongPeerFails(t *testing.T) {
	a, b := loopbackStack(t), loopbackStack(t)
	other, _ := peer.GenerateKey(nil)
	_, err := a.tr.Dial(testCtx(t, 10*time.Second), b.maddr(t), other.ID())
	if !errors.Is(err, transport.ErrWrongPeer) || !errors.Is(err, security.ErrWrongPeer) {
		t.Fatalf("err = %v, want transport.ErrWrongPeer", err)
	}
}

func TestTransportCanDial(t *testing.T) {
	a := loopbackStack(t)
	for _, c := range []struct {
		addr string
		ok   bool
	}{
		{"/ip4/192.0.2.1/udp/4242/ipv8", true},
		{"/ip6/2001:db8::1/udp/4242/ipv8", true},
		{"/ip4/192.0.2.1/udp/4242/quic-v1", false},
		{"/ip4/192.0.2.1/udp/4242", false},
		{"/ip4/192.0.2.1/tcp/4242/ipv8", false},
		{"/ip4/0.0.0.0/udp/4242/ipv8", false},
		{"/ip4/192.0.2.1/udp/0/ipv8", false},
	} {
		m, err := ma.NewMultiaddr(c.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.tr.CanDial(m); got != c.ok {
			t.Errorf("CanDial(%s) = %v, want %v", c.addr, got, c.ok)
		}
	}
	if a.tr.Name() != "udp" {
		t.Fatal("name")
	}
}

func TestTransportSimultaneousDialsEndInOneConnEach(t *testing.T) {
	a, b := loopbackStack(t), loopbackStack(t)
	var wg sync.WaitGroup
	var ca, cb transport.Conn
	var ea, eb error
	wg.Add(2)
	go func() { defer wg.Done(); ca, ea = a.tr.Dial(testCtx(t, 10*time.Second), b.maddr(t), b.id()) }()
	go func() { defer wg.Done(); cb, eb = b.tr.Dial(testCtx(t, 10*time.Second), a.maddr(t), a.id()) }()
	wg.Wait()
	if ea != nil || eb != nil {
		t.Fatalf("dials: %v, %v", ea, eb)
	}
	// Neither side got its Conn from Accept: each serves streams on the one
	// its Dial returned, as a host does on every Conn.
	go serveEcho(ca)
	go serveEcho(cb)
	// Streams both ways: the two sides agree on who opens which IDs.
	roundTrip(t, ca, []byte("a to b"))
	roundTrip(t, cb, []byte("b to a"))
	for _, s := range []*stack{a, b} {
		s.tr.mu.Lock()
		n := s.tr.conns.len()
		s.tr.mu.Unlock()
		if n != 1 {
			t.Fatalf("%d conns with one peer", n)
		}
	}
}

func TestTransportCloseEndsConns(t *testing.T) {
	a, b := loopbackStack(t), loopbackStack(t)
	var got transport.Conn
	accepted := make(chan struct{})
	go func() {
		got, _ = b.ln.Accept(context.Background())
		close(accepted)
	}()
	c, err := a.tr.Dial(testCtx(t, 10*time.Second), b.maddr(t), b.id())
	if err != nil {
		t.Fatal(err)
	}
	// The responder's Conn exists once a packet of the mux arrives.
	if _, err := c.OpenStream(testCtx(t, 10*time.Second), "/x/1"); err != nil {
		t.Fatal(err)
	}
	<-accepted
	a.tr.Close()
	for _, conn := range []transport.Conn{c, got} {
		select {
		case <-conn.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("conn survived its transport's close")
		}
	}
	if _, err := a.tr.Dial(testCtx(t, time.Second), b.maddr(t), b.id()); !errors.Is(err, transport.ErrTransportClosed) {
		t.Fatalf("dial after close: %v", err)
	}
}

// recordingSec checks that NewTransport installs the port's batch writer.
type recordingSec struct {
	security.SecureTransport
	w func([][]byte, netip.AddrPort) (int, error)
}

func (r *recordingSec) SetBatchWriter(w func([][]byte, netip.AddrPort) (int, error)) { r.w = w }
func (r *recordingSec) Accept(ctx context.Context) (security.Session, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (r *recordingSec) Close() error { return nil }

func TestTransportInstallsPortBatchWriter(t *testing.T) {
	p, err := Listen(Config{Addr: netip.MustParseAddrPort("127.0.0.1:0")})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dst, err := Listen(Config{Addr: netip.MustParseAddrPort("127.0.0.1:0")})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	var mu sync.Mutex
	var got [][]byte
	dst.HandleType(transport.TypeNoiseData, func(b []byte, _ netip.AddrPort) {
		mu.Lock()
		got = append(got, append([]byte(nil), b...))
		mu.Unlock()
	})
	key, _ := peer.GenerateKey(nil)
	rs := &recordingSec{}
	tr, err := NewTransport(key, p, rs, reliable.New(reliable.Config{}), TransportConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if rs.w == nil {
		t.Fatal("no batch writer installed")
	}
	pkts := [][]byte{{transport.TypeNoiseData, 1}, {transport.TypeNoiseData, 2}, {transport.TypeNoiseData, 3}}
	if n, err := rs.w(pkts, dst.LocalAddr()); n != 3 || err != nil {
		t.Fatalf("batch write: %d, %v", n, err)
	}
	eventually(t, "three packets", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3 })
}

// TestTransportStreamSurvivesAddressChange moves the client behind another
// NAT, and makes its NAT forget its mapping, in the middle of a transfer on
// internal/netsim: every byte arrives, and no new handshake runs.
func TestTransportStreamSurvivesAddressChange(t *testing.T) {
	n := netsim.New(netsim.Config{Seed: 5})
	defer n.Close()
	link := netsim.Link{Latency: 5 * time.Millisecond, Bandwidth: 20e6, Loss: 0.01}
	natCfg := netsim.NATConfig{PortAllocation: netsim.PortRandom}
	home := n.NewNAT(netip.MustParseAddr("198.51.100.1"), natCfg, link)
	cafe := n.NewNAT(netip.MustParseAddr("203.0.113.1"), natCfg, link)
	laptop := home.NewHost(netip.MustParseAddr("10.0.0.2"), link)
	server := n.NewHost(netip.MustParseAddr("192.0.2.2"), link)
	pc, err := laptop.ListenUDP(4000)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := server.ListenUDP(4000)
	if err != nil {
		t.Fatal(err)
	}
	a, b := newStack(t, NewPort(pc, Config{})), newStack(t, NewPort(ps, Config{}))
	b.echo(t)
	c, err := a.tr.Dial(testCtx(t, 20*time.Second), b.maddr(t), b.id())
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(4 << 20)
	done := make(chan struct{})
	go func() {
		defer close(done)
		roundTrip(t, c, data)
	}()
	time.Sleep(300 * time.Millisecond)
	home.FlushMappings()
	time.Sleep(300 * time.Millisecond)
	laptop.MoveBehind(cafe, netip.MustParseAddr("10.1.0.9"))
	select {
	case <-done:
	case <-time.After(120 * time.Second):
		t.Fatal("transfer did not finish")
	}
	if hs := a.sec.Stats().HandshakesInitiated + b.sec.Stats().HandshakesInitiated; hs != 1 {
		t.Fatalf("%d handshakes: the move caused a new one", hs)
	}
	if r := b.sec.Stats().Roams; r < 2 {
		t.Fatalf("the server's session moved %d times, want 2", r)
	}
	if got := c.RemotePeer(); got != b.id() {
		t.Fatal("peer changed")
	}
}
