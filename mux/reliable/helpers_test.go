package reliable

import (
	"context"
	"crypto/sha256"
	"hash"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/internal/netsim"
	"github.com/ipv8/go-ipv8/mux/internal/plainsession"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
)

// plainPayload leaves room for a 41-byte plain-session hello header in
// netsim's 1452-byte MTU, about what a Noise header and tag cost.
const plainPayload = 1452 - 48

// pair is a client and a server Conn over plain sessions.
type pair struct {
	client, server transport.Conn
	mc, ms         *Muxer
	ec, es         *plainsession.Endpoint
}

func newKey(t testing.TB) *peer.PrivateKey {
	k, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// connect runs a client Conn over pcC and a server Conn over pcS.
func connect(t testing.TB, pcC, pcS transport.PacketConn, cfgC, cfgS Config, payload int) *pair {
	return connectGSO(t, pcC, pcS, cfgC, cfgS, payload, false)
}

func connectGSO(t testing.TB, pcC, pcS transport.PacketConn, cfgC, cfgS Config, payload int, gso bool) *pair {
	t.Helper()
	kc, ks := newKey(t), newKey(t)
	p := &pair{
		ec: plainsession.NewWithGSO(pcC, kc, payload, gso),
		es: plainsession.NewWithGSO(pcS, ks, payload, gso),
		mc: New(cfgC),
		ms: New(cfgS),
	}
	t.Cleanup(p.close)
	serverAddr := pcS.LocalAddr().(*net.UDPAddr).AddrPort()
	sc := p.ec.Dial(netip.AddrPortFrom(serverAddr.Addr().Unmap(), serverAddr.Port()), ks.Public())
	var err error
	if p.client, err = p.mc.NewConn(sc, true); err != nil {
		t.Fatal(err)
	}
	// The server learns of the session with the client's first packet; a
	// PING makes sure there is one even before a stream opens.
	p.client.(*conn).mu.Lock()
	p.client.(*conn).needPing = true
	p.client.(*conn).mu.Unlock()
	p.mc.schedule(p.client.(*conn))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ss, err := p.es.Accept(ctx)
	if err != nil {
		t.Fatalf("server did not see the session: %v", err)
	}
	if p.server, err = p.ms.NewConn(ss, false); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *pair) close() {
	p.mc.Close()
	p.ms.Close()
	p.ec.Close()
	p.es.Close()
}

// loopbackPair connects two Conns over UDP on 127.0.0.1.
func loopbackPair(t testing.TB, cfg Config, payload int, gso ...bool) *pair {
	t.Helper()
	a, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*net.UDPConn{a, b} {
		_ = c.SetReadBuffer(8 << 20)
		_ = c.SetWriteBuffer(8 << 20)
	}
	return connectGSO(t, a, b, cfg, cfg, payload, len(gso) > 0 && gso[0])
}

// simNet builds a netsim network with a client and a server host.
type simNet struct {
	n              *netsim.Network
	client, server *netsim.Host
	pcC, pcS       *netsim.Conn
}

func newSimNet(t testing.TB, seed uint64, clientLink, serverLink netsim.Link) *simNet {
	t.Helper()
	n := netsim.New(netsim.Config{Seed: seed})
	t.Cleanup(func() { n.Close() })
	s := &simNet{n: n}
	s.client = n.NewHost(netip.MustParseAddr("10.0.0.1"), clientLink)
	s.server = n.NewHost(netip.MustParseAddr("10.0.0.2"), serverLink)
	var err error
	if s.pcC, err = s.client.ListenUDP(4000); err != nil {
		t.Fatal(err)
	}
	if s.pcS, err = s.server.ListenUDP(5000); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*netsim.Conn{s.pcC, s.pcS} {
		_ = c.SetReadBuffer(16 << 20)
	}
	return s
}

// patternReader yields a deterministic pseudo-random byte stream of n
// bytes without holding it in memory.
type patternReader struct {
	n, off uint64
	x      uint64
}

func newPattern(n uint64, seed uint64) *patternReader { return &patternReader{n: n, x: seed | 1} }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(uint64(len(p)), r.n-r.off)]
	for i := range p {
		// xorshift64 per 8 bytes, spread over the bytes.
		if (r.off+uint64(i))%8 == 0 {
			r.x ^= r.x << 13
			r.x ^= r.x >> 7
			r.x ^= r.x << 17
		}
		p[i] = byte(r.x >> (8 * ((r.off + uint64(i)) % 8)))
	}
	r.off += uint64(len(p))
	return len(p), nil
}

// digestOf returns the SHA-256 of the pattern, computed incrementally.
func digestOf(n, seed uint64) []byte {
	h := sha256.New()
	io.CopyBuffer(h, newPattern(n, seed), make([]byte, 64<<10))
	return h.Sum(nil)
}

// transfer writes n pattern bytes on a new stream from p.client and
// checks on the server that exactly those bytes arrive, then EOF.
func transfer(t testing.TB, p *pair, n uint64, seed uint64, timeout time.Duration) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	type result struct {
		sum []byte
		n   int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		s, err := p.server.AcceptStream(ctx)
		if err != nil {
			got <- result{err: err}
			return
		}
		var h hash.Hash = sha256.New()
		m, err := io.CopyBuffer(h, s, make([]byte, 64<<10))
		s.Close()
		got <- result{sum: h.Sum(nil), n: m, err: err}
	}()
	start := time.Now()
	s, err := p.client.OpenStream(ctx, "/test/transfer/1")
	if err != nil {
		t.Fatal(err)
	}
	if dl, ok := ctx.Deadline(); ok {
		s.SetWriteDeadline(dl)
	}
	if _, err := io.CopyBuffer(s, newPattern(n, seed), make([]byte, 64<<10)); err != nil {
		t.Fatalf("write: %v (stats %+v)", err, p.client.Stats())
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-got:
	case <-ctx.Done():
		t.Fatalf("transfer of %d bytes timed out; client %+v; server %+v", n, p.client.Stats(), p.server.Stats())
	}
	elapsed := time.Since(start)
	if r.err != nil {
		t.Fatalf("read: %v", r.err)
	}
	if uint64(r.n) != n {
		t.Fatalf("received %d bytes, sent %d", r.n, n)
	}
	if want := digestOf(n, seed); string(r.sum) != string(want) {
		t.Fatalf("received bytes differ from those sent")
	}
	return elapsed
}

// nullSession is a session that sends nowhere (for fuzzing and memory
// measurements).
type nullSession struct {
	done chan struct{}
	once sync.Once
	key  *peer.PrivateKey
}

var nullKey, _ = peer.GenerateKey(nil)

func newNullSession() *nullSession { return &nullSession{done: make(chan struct{}), key: nullKey} }

func (s *nullSession) LocalPeer() peer.ID               { return s.key.ID() }
func (s *nullSession) RemotePeer() peer.ID              { return s.key.ID() }
func (s *nullSession) RemotePublicKey() *peer.PublicKey { return s.key.Public() }
func (s *nullSession) RemoteAddr() netip.AddrPort       { return netip.MustParseAddrPort("192.0.2.1:1") }
func (s *nullSession) MaxPayload() int                  { return 1400 }
func (s *nullSession) Send(b []byte) error              { return nil }
func (s *nullSession) SetReceiver(f func(b []byte))     {}
func (s *nullSession) Done() <-chan struct{}            { return s.done }
func (s *nullSession) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}
