package reliable

import (
	"context"
	"io"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
)

// BenchmarkStreamThroughputLoopback moves one stream over UDP on
// 127.0.0.1 through plain (unencrypted) sessions with MTU-sized packets
// (1404-byte payloads), sendmmsg/recvmmsg in the session.
func BenchmarkStreamThroughputLoopback(b *testing.B) {
	benchThroughput(b, Config{}, plainPayload, false)
}

// BenchmarkStreamThroughputLoopbackBBR is the same with BBR.
func BenchmarkStreamThroughputLoopbackBBR(b *testing.B) {
	benchThroughput(b, Config{Congestion: BBR}, plainPayload, false)
}

// BenchmarkStreamThroughputLoopbackGSO is the same with a session that
// sends each batch with UDP GSO (as quic-go does), to show what the mux
// can feed a port that offloads segmentation.
func BenchmarkStreamThroughputLoopbackGSO(b *testing.B) {
	benchThroughput(b, Config{}, plainPayload, true)
}

func benchThroughput(b *testing.B, cfg Config, payload int, gso bool) {
	p := loopbackPair(b, cfg, payload, gso)
	ctx := context.Background()
	const chunk = 1 << 20
	done := make(chan int64)
	go func() {
		s, err := p.server.AcceptStream(ctx)
		if err != nil {
			done <- -1
			return
		}
		n, _ := io.CopyBuffer(io.Discard, s, make([]byte, 256<<10))
		done <- n
	}()
	s, err := p.client.OpenStream(ctx, "/bench/1")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, chunk)
	b.SetBytes(chunk)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	s.CloseWrite()
	if n := <-done; n != int64(b.N)*chunk {
		b.Fatalf("received %d of %d bytes", n, int64(b.N)*chunk)
	}
	b.StopTimer()
	st := p.client.Stats()
	b.ReportMetric(float64(st.PacketsLost), "lost")
	b.ReportMetric(float64(p.server.Stats().PacketsSent)/float64(st.PacketsSent), "acks/pkt")
}

// memSession is an in-memory session pair: Send hands the payload
// straight to the peer's receiver. It isolates the mux's own cost.
type memSession struct {
	peer *memSession
	key  *peer.PrivateKey
	addr netip.AddrPort

	mu    sync.Mutex
	recv  func([]byte)
	early [][]byte
	done  chan struct{}
	once  sync.Once
}

func memPair(a, b *peer.PrivateKey) (*memSession, *memSession) {
	x := &memSession{key: a, addr: netip.MustParseAddrPort("192.0.2.1:1"), done: make(chan struct{})}
	y := &memSession{key: b, addr: netip.MustParseAddrPort("192.0.2.2:2"), done: make(chan struct{})}
	x.peer, y.peer = y, x
	return x, y
}

func (s *memSession) LocalPeer() peer.ID               { return s.key.ID() }
func (s *memSession) RemotePeer() peer.ID              { return s.peer.key.ID() }
func (s *memSession) RemotePublicKey() *peer.PublicKey { return s.peer.key.Public() }
func (s *memSession) RemoteAddr() netip.AddrPort       { return s.peer.addr }
func (s *memSession) MaxPayload() int                  { return 1400 }
func (s *memSession) Done() <-chan struct{}            { return s.done }
func (s *memSession) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}
func (s *memSession) Send(b []byte) error {
	p := s.peer
	p.mu.Lock()
	f := p.recv
	if f == nil {
		p.early = append(p.early, append([]byte(nil), b...))
	}
	p.mu.Unlock()
	if f != nil {
		f(b)
	}
	return nil
}
func (s *memSession) SetReceiver(f func([]byte)) {
	s.mu.Lock()
	s.recv = f
	early := s.early
	s.early = nil
	s.mu.Unlock()
	for _, b := range early {
		f(b)
	}
}

// idleConns opens n connection pairs over in-memory sessions, runs one
// request/response stream on each so they are fully set up, and lets them
// go idle. It returns the heap bytes and goroutines added per Conn (each
// pair is two Conns, one on each Muxer, as on two hosts).
func idleConns(tb testing.TB, n int) (heapPerConn float64, goroutinesPerConn float64) {
	cfg := Config{KeepAlive: -1, IdleTimeout: time.Hour}
	ma, mb := New(cfg), New(cfg)
	defer ma.Close()
	defer mb.Close()
	ka, kb := newKey(tb), newKey(tb)
	// Sessions first, so that only the mux's cost is measured.
	sa := make([]*memSession, n)
	sb := make([]*memSession, n)
	for i := range sa {
		sa[i], sb[i] = memPair(ka, kb)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	conns := make([]transport.Conn, 0, 2*n)
	ctx := context.Background()
	for i := 0; i < n; i++ {
		ca, err := ma.NewConn(sa[i], true)
		if err != nil {
			tb.Fatal(err)
		}
		cb, err := mb.NewConn(sb[i], false)
		if err != nil {
			tb.Fatal(err)
		}
		conns = append(conns, ca, cb)
		s, err := ca.OpenStream(ctx, "/idle/1")
		if err != nil {
			tb.Fatal(err)
		}
		s.Write([]byte("hi"))
		s.CloseWrite()
		ss, err := cb.AcceptStream(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		io.ReadAll(ss)
		ss.Write([]byte("ho"))
		ss.Close()
		io.ReadAll(s)
		s.Close()
	}
	// Let the last ACKs settle and every stream be forgotten.
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range conns {
		for streamCount(c) > 0 || inFlight(c) > 0 {
			if time.Now().After(deadline) {
				tb.Fatalf("conn did not go idle: %d streams, %d bytes in flight", streamCount(c), inFlight(c))
			}
			time.Sleep(time.Millisecond)
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	g1 := runtime.NumGoroutine()
	heapPerConn = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(len(conns))
	goroutinesPerConn = float64(g1-g0) / float64(len(conns))
	runtime.KeepAlive(conns)
	runtime.KeepAlive(sa)
	runtime.KeepAlive(sb)
	return heapPerConn, goroutinesPerConn
}

func inFlight(c transport.Conn) int {
	cc := c.(*conn)
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.bytesInFlight
}

// BenchmarkIdleConns10k reports the heap bytes and goroutines each idle
// Conn costs with 10 000 sessions open (20 000 Conns: both ends).
func BenchmarkIdleConns10k(b *testing.B) {
	for i := 0; i < b.N; i++ {
		heap, gor := idleConns(b, 10_000)
		b.ReportMetric(heap, "heapB/conn")
		b.ReportMetric(gor, "goroutines/conn")
	}
}

func TestIdleConnCostsUnderFourKiBAndNoGoroutine(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 500
	}
	heap, gor := idleConns(t, n)
	t.Logf("%d idle sessions: %.0f heap bytes and %.3f goroutines per Conn", n, heap, gor)
	if heap > 4096 {
		t.Fatalf("an idle Conn costs %.0f heap bytes, more than 4 KiB", heap)
	}
	if gor > 0.01 {
		t.Fatalf("idle Conns cost %.3f goroutines each", gor)
	}
}

// batchSession is a memSession that also offers SendBatch and counts how
// packets reach it.
type batchSession struct {
	*memSession
	mu                sync.Mutex
	batches, inBatch  int
	single, maxBatch  int
	equalSizedBatches int
}

func (s *batchSession) Send(b []byte) error {
	s.mu.Lock()
	s.single++
	s.mu.Unlock()
	return s.memSession.Send(b)
}

func (s *batchSession) SendBatch(pkts [][]byte) (int, error) {
	s.mu.Lock()
	s.batches++
	s.inBatch += len(pkts)
	s.maxBatch = max(s.maxBatch, len(pkts))
	equal := true
	for _, p := range pkts[:len(pkts)-1] {
		equal = equal && len(p) == len(pkts[0])
	}
	if equal {
		s.equalSizedBatches++
	}
	s.mu.Unlock()
	for i, p := range pkts {
		if err := s.memSession.Send(p); err != nil {
			return i, err
		}
	}
	return len(pkts), nil
}

func TestSendPathHandsBatchesToBatchSender(t *testing.T) {
	a, b := memPair(newKey(t), newKey(t))
	bs := &batchSession{memSession: a}
	ma, mb := New(Config{}), New(Config{})
	defer ma.Close()
	defer mb.Close()
	ca, err := ma.NewConn(bs, true)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := mb.NewConn(b, false)
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{client: ca, server: cb}
	transfer(t, p, 4<<20, 5, time.Minute)
	bs.mu.Lock()
	defer bs.mu.Unlock()
	t.Logf("%d batches carrying %d packets (largest %d, %d of equal-sized packets but the last), %d single sends",
		bs.batches, bs.inBatch, bs.maxBatch, bs.equalSizedBatches, bs.single)
	if bs.maxBatch < 8 || bs.inBatch < 2*bs.single {
		t.Fatalf("the bulk of the packets did not go through SendBatch in batches")
	}
	if bs.equalSizedBatches*10 < bs.batches*9 {
		t.Fatalf("only %d of %d batches are runs of equal-sized packets (GSO needs them)", bs.equalSizedBatches, bs.batches)
	}
}
