package noise

import (
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
)

// discardPath drops what is written to it.
type discardPath struct{}

func (discardPath) WritePacket([]byte) error { return nil }
func (discardPath) Addr() netip.AddrPort     { return netip.MustParseAddrPort("192.0.2.1:1") }
func (discardPath) Kind() transport.PathKind { return transport.PathDirect }
func (discardPath) Overhead() int            { return 0 }

// ringPath keeps the last packets written, reusing their buffers.
type ringPath struct {
	pkts [][]byte
	i    int
}

func (r *ringPath) WritePacket(p []byte) error {
	r.pkts[r.i] = append(r.pkts[r.i][:0], p...)
	r.i = (r.i + 1) % len(r.pkts)
	return nil
}
func (r *ringPath) Addr() netip.AddrPort     { return netip.MustParseAddrPort("192.0.2.1:1") }
func (r *ringPath) Kind() transport.PathKind { return transport.PathDirect }
func (r *ringPath) Overhead() int            { return 0 }

func setPath(s *session, p Path) {
	ps := newPathState(p)
	ps.validated.Store(true)
	s.path.Store(ps)
}

// sealedPackets makes n sealed packets from sa's session to sb's, with a
// payload of size bytes.
func sealedPackets(sa *session, n, size int) [][]byte {
	r := &ringPath{pkts: make([][]byte, n)}
	setPath(sa, r)
	payload := make([]byte, size)
	for i := 0; i < n; i++ {
		sa.Send(payload)
	}
	return r.pkts
}

func TestSendAndReceiveDoNotAllocate(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	sa, sb := pair(t, a, b, true)
	n.settle()
	sb.SetReceiver(func([]byte) {})
	s := sa.(*session)
	setPath(s, discardPath{})
	payload := make([]byte, 1200)
	if allocs := testing.AllocsPerRun(1000, func() { s.Send(payload) }); allocs != 0 {
		t.Fatalf("Send allocates %.1f times per packet", allocs)
	}
	pkts := sealedPackets(s, 1100, 1200)
	from := a.port.LocalAddr()
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		b.tr.onData(pkts[i], from, nil)
		i++
	})
	if allocs != 0 {
		t.Fatalf("receiving allocates %.1f times per packet", allocs)
	}
	if got := b.tr.Stats().PacketsReceived; got < 1000 {
		t.Fatalf("only %d packets opened", got)
	}
}

// BenchmarkSealOpen measures one core sealing and opening full-size
// packets: Send on one session, the data handler of the other.
func BenchmarkSealOpen(b *testing.B) {
	n := newFakeNet(b)
	clk := newFakeClock()
	x := newNode(b, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	y := newNode(b, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	sx, sy := pair(b, x, y, true)
	n.settle()
	sy.SetReceiver(func([]byte) {})
	s := sx.(*session)
	payload := make([]byte, s.MaxPayload())
	r := &ringPath{pkts: make([][]byte, 1)}
	setPath(s, r)
	from := x.port.LocalAddr()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		s.Send(payload)
		y.tr.onData(r.pkts[0], from, nil)
	}
}

// BenchmarkSeal and BenchmarkOpen split the two.
func BenchmarkSeal(b *testing.B) {
	n := newFakeNet(b)
	clk := newFakeClock()
	x := newNode(b, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	y := newNode(b, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	sx, _ := pair(b, x, y, true)
	n.settle()
	s := sx.(*session)
	setPath(s, discardPath{})
	payload := make([]byte, s.MaxPayload())
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		s.Send(payload)
	}
}

// handshakeBench runs complete handshakes between two transports on one
// goroutine: the initiator's message 1 goes straight into the responder's
// handler, message 2 straight back, and so on, so the figure is the CPU
// cost of both sides.
type handshakeBench struct {
	x, y   *Transport
	xp, yp *syncPort
	resume bool // dial with the ticket the previous handshake left
}

// syncPort is a Port that hands each packet to a queue the benchmark drains.
type syncPort struct {
	addr netip.AddrPort
	mu   sync.Mutex
	out  []fakePacket
	h    [256]transport.PacketHandler
}

func (p *syncPort) LocalAddr() netip.AddrPort { return p.addr }
func (p *syncPort) WriteTo(b []byte, to netip.AddrPort) error {
	p.mu.Lock()
	p.out = append(p.out, fakePacket{from: p.addr, to: to, data: append([]byte(nil), b...)})
	p.mu.Unlock()
	return nil
}
func (p *syncPort) HandleType(t byte, h transport.PacketHandler) { p.h[t] = h }
func (p *syncPort) HandleSTUN(transport.PacketHandler)           {}
func (p *syncPort) HandleCommunity(transport.PacketHandler)      {}

func newHandshakeBench(b *testing.B, kx, ky *peer.PrivateKey, cfg Config) *handshakeBench {
	hb := &handshakeBench{
		xp: &syncPort{addr: netip.MustParseAddrPort("10.0.0.1:1")},
		yp: &syncPort{addr: netip.MustParseAddrPort("10.0.0.2:2")},
	}
	var err error
	if hb.x, err = New(kx, hb.xp, cfg); err != nil {
		b.Fatal(err)
	}
	if hb.y, err = New(ky, hb.yp, cfg); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { hb.x.Close(); hb.y.Close() })
	return hb
}

// pump delivers queued packets between the two ports until none are left.
func (hb *handshakeBench) pump() {
	for {
		moved := false
		for _, pair := range [][2]*syncPort{{hb.xp, hb.yp}, {hb.yp, hb.xp}} {
			src, dst := pair[0], pair[1]
			src.mu.Lock()
			out := src.out
			src.out = nil
			src.mu.Unlock()
			for _, p := range out {
				if h := dst.h[p.data[0]]; h != nil {
					h(p.data, p.from)
				}
				moved = true
			}
		}
		if !moved {
			return
		}
	}
}

// one runs a handshake from x to y and closes both sessions silently.
func (hb *handshakeBench) one(b *testing.B, byID bool) {
	var id peer.ID
	if byID {
		id = hb.y.id
	}
	h, err := hb.x.newInitiator(PatternXX, "", nil, hb.x.primary, &directPath{port: hb.xp, addr: hb.yp.addr}, nil, nil, hb.x.now().Add(time.Minute))
	if byID && hb.resume {
		// As Dial does with a ticket: no key derived from the ID.
		path := &directPath{port: hb.xp, addr: hb.yp.addr}
		tk := hb.x.ticketFor(id, path)
		if tk == nil {
			b.Fatal("no ticket to resume with")
		}
		h, err = hb.x.newInitiator(PatternIK, id, tk.rs[:], hb.x.primary, path, nil, nil, hb.x.now().Add(time.Minute))
		if err == nil {
			h.resume(tk)
		}
	} else if byID {
		pub, _ := id.PublicKey()
		h, err = hb.x.newInitiator(PatternIK, id, pub.X25519(), hb.x.primary, &directPath{port: hb.xp, addr: hb.yp.addr}, nil, nil, hb.x.now().Add(time.Minute))
	}
	if err != nil {
		b.Fatal(err)
	}
	if err := h.start(); err != nil {
		b.Fatal(err)
	}
	hb.pump()
	<-h.done
	if h.err != nil {
		b.Fatal(h.err)
	}
	sx := h.sess
	sy := <-hb.y.acceptQ
	// The first packet under the keys confirms them to the responder (it
	// then keeps a ticket for the next resumption), as a Conn's first
	// packet does right after a dial.
	if err := sx.Send([]byte{0}); err != nil {
		b.Fatal(err)
	}
	hb.pump()
	sx.close(false, nil)
	sy.close(false, nil)
	hb.y.mu.Lock()
	hb.y.lastInit.Purge() // the next handshake from x is a new one
	hb.y.mu.Unlock()
}

func benchHandshakes(b *testing.B, byID bool, cfg Config) { benchHandshakesMode(b, byID, false, cfg) }

func benchHandshakesMode(b *testing.B, byID, resume bool, cfg Config) {
	clk := newFakeClock()
	cfg.Clock = clk
	hb := newHandshakeBench(b, newKey(b), newKey(b), cfg)
	if resume {
		hb.one(b, true) // leaves the first ticket
		clk.Advance(time.Millisecond)
		hb.resume = true
	}
	r0 := hb.y.Stats().Resumptions
	b.ReportAllocs()
	start, cpu0 := time.Now(), processCPU()
	k := 0
	for b.Loop() {
		hb.one(b, byID)
		clk.Advance(time.Millisecond)
		k++
	}
	b.ReportMetric(float64(k)/time.Since(start).Seconds(), "handshakes/s")
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(k)/cpu.Seconds(), "handshakes/cpu-s")
	}
	b.ReportMetric(float64(hb.y.Stats().CookieRepliesSent)/float64(k), "cookies/hs")
	if resumed := hb.y.Stats().Resumptions - r0; resume && resumed != uint64(k) {
		b.Fatalf("%d of %d handshakes resumed", resumed, k)
	}
}

// BenchmarkHandshakeResume: a peer seen before, with the ticket the
// previous session left (NNpsk0: one Diffie-Hellman per side).
func BenchmarkHandshakeResume(b *testing.B) { benchHandshakesMode(b, true, true, Config{}) }

// BenchmarkHandshakeIK: a known peer dials again (the static-static DH is
// cached, as for a reconnection or a rekey).
func BenchmarkHandshakeIK(b *testing.B) { benchHandshakes(b, true, Config{}) }

// BenchmarkHandshakeIKCold: no cache, every handshake pays every DH.
func BenchmarkHandshakeIKCold(b *testing.B) { benchHandshakes(b, true, Config{StaticCacheSize: -1}) }

// BenchmarkHandshakeXX: dialling an address.
func BenchmarkHandshakeXX(b *testing.B) { benchHandshakes(b, false, Config{}) }

func TestSendBatchUsesBatchWriter(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	sa, sb := pair(t, a, b, true)
	ib := newInbox(sb)
	n.settle()
	calls := 0
	a.tr.SetBatchWriter(func(pkts [][]byte, to netip.AddrPort) (int, error) {
		calls++
		for _, p := range pkts {
			a.port.WriteTo(p, to)
		}
		return len(pkts), nil
	})
	var payloads [][]byte
	for i := 0; i < 100; i++ {
		payloads = append(payloads, []byte{byte(i)})
	}
	bs := sa.(interface {
		SendBatch([][]byte) (int, error)
	})
	if k, err := bs.SendBatch(payloads); k != 100 || err != nil {
		t.Fatalf("SendBatch: %d, %v", k, err)
	}
	got := ib.waitN(t, 100)
	for i, m := range got {
		if m[0] != byte(i) {
			t.Fatalf("payload %d is %d", i, m[0])
		}
	}
	if calls != 2 { // 64 + 36
		t.Fatalf("%d batch writes for 100 payloads", calls)
	}
	// Without a batch writer, SendBatch still sends everything.
	a.tr.SetBatchWriter(nil)
	if k, err := bs.SendBatch(payloads[:10]); k != 10 || err != nil {
		t.Fatalf("SendBatch: %d, %v", k, err)
	}
	ib.waitN(t, 110)
}

func BenchmarkSendBatch(b *testing.B) {
	n := newFakeNet(b)
	clk := newFakeClock()
	x := newNode(b, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	y := newNode(b, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	sx, _ := pair(b, x, y, true)
	n.settle()
	x.tr.SetBatchWriter(func(pkts [][]byte, to netip.AddrPort) (int, error) { return len(pkts), nil })
	s := sx.(*session)
	payloads := make([][]byte, 32)
	for i := range payloads {
		payloads[i] = make([]byte, s.MaxPayload())
	}
	b.SetBytes(int64(32 * s.MaxPayload()))
	b.ReportAllocs()
	for b.Loop() {
		s.SendBatch(payloads)
	}
}

// BenchmarkIdleSessionHeap reports the heap one idle session costs on the
// responder (its share of the ≤ 4 KiB per idle connection target).
func BenchmarkIdleSessionHeap(b *testing.B) {
	clk := newFakeClock()
	hb := newHandshakeBench(b, newKey(b), newKey(b), Config{Clock: clk})
	keys := make([]*Transport, 0, 1000)
	for i := 0; i < cap(keys); i++ {
		x, err := New(newKey(b), &syncPort{addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 1)}, Config{Clock: clk})
		if err != nil {
			b.Fatal(err)
		}
		keys = append(keys, x)
	}
	b.ResetTimer()
	var perSession float64
	for b.Loop() {
		y := hb.y
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		for _, x := range keys {
			xp := x.port.(*syncPort)
			pub, _ := y.id.PublicKey()
			h, _ := x.newInitiator(PatternIK, y.id, pub.X25519(), x.primary, &directPath{port: xp, addr: hb.yp.addr}, nil, nil, x.now().Add(time.Minute))
			h.start()
			for len(xp.out) > 0 || len(hb.yp.out) > 0 {
				for _, p := range xp.out {
					hb.yp.h[p.data[0]](p.data, p.from)
				}
				xp.out = nil
				out := hb.yp.out
				hb.yp.out = nil
				for _, p := range out {
					xp.h[p.data[0]](p.data, p.from)
				}
			}
			<-y.acceptQ
		}
		clk.Advance(time.Minute) // handshakes settle, caches of the handshake expire
		runtime.GC()
		runtime.ReadMemStats(&m1)
		perSession = float64(m1.HeapAlloc-m0.HeapAlloc) / float64(len(keys))
		b.StopTimer()
		for _, x := range keys {
			if s := y.sessions[x.id]; s != nil {
				s.close(false, nil)
			}
		}
		y.lastInit.Purge()
		b.StartTimer()
	}
	b.ReportMetric(perSession, "heap-B/session")
}
