//go:build linux

package udp

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipv8/go-ipv8/transport"
)

// listen4 opens a port on 127.0.0.1 with cfg and closes it with the test.
func listen4(t testing.TB, cfg Config) *Port {
	t.Helper()
	cfg.Addr = loopback4
	p, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// hasGSO and hasGRO report what the port found in the kernel.
func hasGSO(p *Port) bool {
	w, ok := p.batch.(*mmsgWriter)
	return ok && w.gso.Load()
}

func hasGRO(t testing.TB) bool {
	p := listen4(t, Config{})
	r, ok := p.rd.(*mmsgReader)
	return ok && r.canGRO()
}

// numbered is packet i of a test run: an own type, the run and the index,
// then filler up to size bytes.
func numbered(run, i, size int) []byte {
	b := make([]byte, size)
	b[0] = transport.TypeNoiseData
	binary.BigEndian.PutUint32(b[1:], uint32(run))
	binary.BigEndian.PutUint32(b[5:], uint32(i))
	for k := 9; k < size; k++ {
		b[k] = byte(run + i + k)
	}
	return b
}

// readAll reads n datagrams from c and returns them.
func readAll(t testing.TB, c *net.UDPConn, n int) [][]byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitFor))
	out := make([][]byte, 0, n)
	buf := make([]byte, 1<<16)
	for len(out) < n {
		k, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("after %d of %d datagrams: %v", len(out), n, err)
		}
		out = append(out, bytes.Clone(buf[:k]))
	}
	return out
}

func sameDatagrams(t testing.TB, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d datagrams, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("datagram %d: %d bytes % x…, want %d bytes % x…", i, len(got[i]), got[i][:min(9, len(got[i]))], len(want[i]), want[i][:9])
		}
	}
}

// A batch of equal-sized datagrams to one address (the last shorter)
// leaves as GSO sends, and the receiver, an ordinary socket, gets each
// datagram whole, in order, with its own size. With DisableGSO the same
// batch goes one datagram per message.
func TestWriteBatchSendsEqualSizedRunsWithGSO(t *testing.T) {
	for _, disable := range []bool{false, true} {
		p := listen4(t, Config{DisableGSO: disable})
		if !disable && !hasGSO(p) {
			t.Fatal("this Linux kernel has no UDP GSO (UDP_SEGMENT); the port found none")
		}
		rcv := newSender(t)
		rcv.SetReadBuffer(4 << 20)
		dst := rcv.LocalAddr().(*net.UDPAddr).AddrPort()
		const n = 100 // more than one run (64) and than one call's headers
		want := make([][]byte, n)
		msgs := make([]Message, n)
		for i := range msgs {
			size := 1200
			if i == n-1 {
				size = 300
			}
			want[i] = numbered(1, i, size)
			msgs[i] = Message{want[i], dst}
		}
		if got, err := p.WriteBatch(msgs); got != n || err != nil {
			t.Fatalf("DisableGSO=%v: WriteBatch = %d, %v", disable, got, err)
		}
		sameDatagrams(t, readAll(t, rcv, n), want)
		st := p.Stats()
		if st.Out[ClassOwn].Packets != n {
			t.Errorf("Out[own] = %d packets, want %d", st.Out[ClassOwn].Packets, n)
		}
		switch {
		case disable && st.Offload.GSOSends != 0:
			t.Errorf("DisableGSO: %d GSO sends", st.Offload.GSOSends)
		case !disable && (st.Offload.GSOSends != 2 || st.Offload.GSOSegments != n):
			t.Errorf("GSO sends %d carrying %d datagrams, want 2 carrying %d", st.Offload.GSOSends, st.Offload.GSOSegments, n)
		}
	}
}

// Runs end where the size grows or the destination changes; what goes to
// each destination arrives complete and in order.
func TestWriteBatchSplitsRunsBySizeAndDestination(t *testing.T) {
	p := listen4(t, Config{})
	r1, r2 := newSender(t), newSender(t)
	d1 := r1.LocalAddr().(*net.UDPAddr).AddrPort()
	d2 := r2.LocalAddr().(*net.UDPAddr).AddrPort()
	var msgs []Message
	var want1, want2 [][]byte
	add := func(to netip.AddrPort, size int) {
		b := numbered(2, len(msgs), size)
		msgs = append(msgs, Message{b, to})
		if to == d1 {
			want1 = append(want1, b)
		} else {
			want2 = append(want2, b)
		}
	}
	for range 5 {
		add(d1, 1000) // a run of 5
	}
	add(d1, 400)  // ends it (shorter)
	add(d1, 1000) // a new run: longer again
	add(d1, 1000)
	add(d2, 1000) // another destination
	add(d2, 1000)
	add(d1, 1000)
	add(d1, 9)
	if got, err := p.WriteBatch(msgs); got != len(msgs) || err != nil {
		t.Fatalf("WriteBatch = %d, %v", got, err)
	}
	sameDatagrams(t, readAll(t, r1, len(want1)), want1)
	sameDatagrams(t, readAll(t, r2, len(want2)), want2)
	if hasGSO(p) {
		// Runs: 5×1000+400 | 1000,1000 | d2: 1000,1000 | 1000,9
		if st := p.Stats().Offload; st.GSOSends != 4 || st.GSOSegments != uint64(len(msgs)) {
			t.Errorf("%d GSO sends carrying %d datagrams, want 4 carrying %d", st.GSOSends, st.GSOSegments, len(msgs))
		}
	}
}

// When the kernel refuses a run as one send (here: a socket with UDP
// checksums off, which GSO needs), WriteBatch sends it one datagram per
// message and nothing is lost.
func TestWriteBatchFallsBackWhenKernelRefusesGSO(t *testing.T) {
	p := listen4(t, Config{})
	if !hasGSO(p) {
		t.Fatal("no UDP GSO on this kernel")
	}
	rc, err := p.pc.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := control(rc, func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_NO_CHECK, 1) }); err != nil {
		t.Fatal(err)
	}
	rcv := newSender(t)
	dst := rcv.LocalAddr().(*net.UDPAddr).AddrPort()
	const n = 40
	want := make([][]byte, n)
	msgs := make([]Message, n)
	for i := range msgs {
		want[i] = numbered(3, i, 800)
		msgs[i] = Message{want[i], dst}
	}
	for round := range 2 {
		if got, err := p.WriteBatch(msgs); got != n || err != nil {
			t.Fatalf("round %d: WriteBatch = %d, %v", round, got, err)
		}
		sameDatagrams(t, readAll(t, rcv, n), want)
	}
	st := p.Stats()
	if st.Offload.GSOSends != 0 || st.WriteErrors != 0 {
		t.Errorf("%d GSO sends, %d write errors; want none", st.Offload.GSOSends, st.WriteErrors)
	}
	if !hasGSO(p) {
		t.Error("EINVAL (a refusal of this run) turned GSO off for good; only EIO should")
	}
}

// runSender sends numbered runs from a GSO port to dst, one WriteBatch
// per run of perRun datagrams (the last one shorter), and the receiving
// handler must see each run complete, whole and in order before the next.
type runSender struct {
	t      testing.TB
	from   *Port
	dst    netip.AddrPort
	size   int
	perRun int
	rec    *recorder
	runs   int
}

func (s *runSender) run() {
	t := s.t
	t.Helper()
	want := make([][]byte, s.perRun)
	msgs := make([]Message, s.perRun)
	for i := range msgs {
		size := s.size
		if i == s.perRun-1 {
			size = s.size / 3
		}
		want[i] = numbered(100+s.runs, i, size)
		msgs[i] = Message{want[i], s.dst}
	}
	s.runs++
	before := len(s.rec.get())
	if n, err := s.from.WriteBatch(msgs); n != len(msgs) || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	eventually(t, "a run to arrive", func() bool { return len(s.rec.get()) >= before+s.perRun })
	got := s.rec.get()[before:]
	for i, r := range got {
		if !bytes.Equal(r.pkt, want[i]) {
			t.Fatalf("run %d, datagram %d: %d bytes % x…, want %d bytes", s.runs, i, len(r.pkt), r.pkt[:min(9, len(r.pkt))], len(want[i]))
		}
		if r.from != s.from.LocalAddr() {
			t.Fatalf("datagram from %v, want %v", r.from, s.from.LocalAddr())
		}
	}
}

// A busy port turns on GRO: the kernel then hands it runs of datagrams as
// one buffer, which the port splits back into the datagrams that were
// sent — each whole, in order, the shorter last one too — before any
// handler sees them. An idle port keeps its small buffers.
func TestBusyPortSplitsCoalescedDatagrams(t *testing.T) {
	if !hasGRO(t) {
		t.Fatal("this Linux kernel has no UDP GRO")
	}
	for _, steer := range []bool{true, false} {
		p := listen4(t, Config{DisableSteering: !steer})
		rec := &recorder{}
		p.HandleType(transport.TypeNoiseData, rec.handle)
		sender := listen4(t, Config{DisableSteering: true})
		s := &runSender{t: t, from: sender, dst: p.LocalAddr(), size: 1400, perRun: 45, rec: rec}
		for p.Stats().Offload.GROReads == 0 {
			if s.runs > 200 {
				t.Fatalf("steered=%v: GRO never came on after %d runs of %d datagrams", steer, s.runs, s.perRun)
			}
			s.run()
		}
		for range 5 {
			s.run()
		}
		st := p.Stats()
		if st.Offload.GROReads == 0 || st.Offload.GROSegments < 2*st.Offload.GROReads {
			t.Errorf("steered=%v: %d coalesced reads holding %d datagrams", steer, st.Offload.GROReads, st.Offload.GROSegments)
		}
		if got, want := st.In[ClassOwn].Packets, uint64(s.runs*s.perRun); got != want {
			t.Errorf("steered=%v: In[own] = %d, want %d", steer, got, want)
		}
		if st.Drops.Truncated != 0 {
			t.Errorf("steered=%v: %d truncated", steer, st.Drops.Truncated)
		}
	}
}

// With DisableGRO the kernel never coalesces, however busy the port, and
// the port keeps its small buffers.
func TestDisableGROKeepsDatagramsApart(t *testing.T) {
	p := listen4(t, Config{DisableGRO: true})
	rec := &recorder{}
	p.HandleType(transport.TypeNoiseData, rec.handle)
	sender := listen4(t, Config{DisableSteering: true})
	s := &runSender{t: t, from: sender, dst: p.LocalAddr(), size: 1400, perRun: 45, rec: rec}
	for range 20 {
		s.run()
	}
	if st := p.Stats().Offload; st.GROReads != 0 {
		t.Fatalf("DisableGRO: %d coalesced reads", st.GROReads)
	}
	p.Close() // the read loop is done: its buffers may be looked at
	if n := len(p.msgs[0].buf); n != DefaultMaxPacketSize+1 {
		t.Fatalf("read buffers of %d bytes, want %d", n, DefaultMaxPacketSize+1)
	}
	if len(p.msgs) != batchSize {
		t.Fatalf("a busy port reads %d datagrams at once, want %d", len(p.msgs), batchSize)
	}
}

// A port that only ever sees a datagram at a time keeps a few small
// buffers (a process may hold thousands of idle ports).
func TestIdlePortKeepsFewSmallBuffers(t *testing.T) {
	p := listen4(t, Config{})
	rec := &recorder{}
	p.HandleType(transport.TypeNoiseData, rec.handle)
	s := newSender(t)
	for i := range 20 {
		if _, err := s.WriteToUDPAddrPort(numbered(8, i, 1200), p.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the datagram", func() bool { return len(rec.get()) == i+1 })
	}
	p.Close()
	if len(p.msgs) != idleReadBatch || len(p.msgs[0].buf) != DefaultMaxPacketSize+1 {
		t.Fatalf("an idle port holds %d buffers of %d bytes, want %d of %d", len(p.msgs), len(p.msgs[0].buf), idleReadBatch, DefaultMaxPacketSize+1)
	}
}

// Coalesced datagrams longer than MaxPacketSize are each dropped and
// counted as truncated, as they would be one by one.
func TestCoalescedDatagramsOverMaxPacketSizeAreDropped(t *testing.T) {
	p := listen4(t, Config{MaxPacketSize: 1000})
	var mu sync.Mutex
	delivered := 0
	p.HandleType(transport.TypeNoiseData, func([]byte, netip.AddrPort) { mu.Lock(); delivered++; mu.Unlock() })
	sender := listen4(t, Config{DisableSteering: true})
	msgs := make([]Message, 45)
	for i := range msgs {
		msgs[i] = Message{numbered(4, i, 1200), p.LocalAddr()}
	}
	sent := 0
	for p.Stats().Offload.GROReads == 0 && sent < 200*len(msgs) {
		if _, err := sender.WriteBatch(msgs); err != nil {
			t.Fatal(err)
		}
		sent += len(msgs)
		want := uint64(sent)
		eventually(t, "the datagrams to be counted", func() bool { return p.Stats().Drops.Truncated >= want })
	}
	if p.Stats().Offload.GROReads == 0 {
		t.Fatal("GRO never came on")
	}
	mu.Lock()
	defer mu.Unlock()
	if delivered != 0 {
		t.Fatalf("%d over-long datagrams delivered", delivered)
	}
	if got := p.Stats().Drops.Truncated; got != uint64(sent) {
		t.Fatalf("%d counted truncated, want %d", got, sent)
	}
}

// Once GRO is on, the receive path still allocates nothing per datagram:
// splitting is slicing.
func TestCoalescedReceivePathAllocatesNothing(t *testing.T) {
	p := listen4(t, Config{})
	got := make(chan struct{}, 64)
	p.HandleType(transport.TypeNoiseData, func([]byte, netip.AddrPort) { got <- struct{}{} })
	sender := listen4(t, Config{DisableSteering: true})
	msgs := make([]Message, 45)
	for i := range msgs {
		msgs[i] = Message{numbered(5, i, 1300), p.LocalAddr()}
	}
	timeout := time.NewTimer(waitFor)
	defer timeout.Stop()
	round := func() {
		if _, err := sender.WriteBatch(msgs); err != nil {
			t.Fatal(err)
		}
		for range msgs {
			select {
			case <-got:
			case <-timeout.C:
				t.Fatal("datagrams lost")
			}
		}
	}
	for i := 0; p.Stats().Offload.GROReads == 0; i++ {
		if i > 200 {
			t.Fatal("GRO never came on")
		}
		round()
	}
	round()
	if allocs := testing.AllocsPerRun(200, round); allocs != 0 {
		t.Errorf("%v allocations per run of %d coalesced datagrams, want 0", allocs, len(msgs))
	}
}

// A dual-stack port ([::]) sends runs with GSO to an IPv4 and an IPv6
// destination alike, and each receiver gets its datagrams whole.
func TestWriteBatchGSOOnDualStackPort(t *testing.T) {
	p, err := Listen(Config{Addr: netip.MustParseAddrPort("[::]:0")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	r4 := newSender(t)
	r6, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r6.Close() })
	var msgs []Message
	var want4, want6 [][]byte
	for i := range 20 {
		b4, b6 := numbered(6, i, 1000), numbered(7, i, 1000)
		want4, want6 = append(want4, b4), append(want6, b6)
		msgs = append(msgs, Message{b4, r4.LocalAddr().(*net.UDPAddr).AddrPort()})
		msgs = append(msgs, Message{b6, r6.LocalAddr().(*net.UDPAddr).AddrPort()})
	}
	// Two runs: all IPv4 first, then all IPv6.
	slices.SortStableFunc(msgs, func(a, b Message) int { return a.Addr.Compare(b.Addr) })
	if n, err := p.WriteBatch(msgs); n != len(msgs) || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	sameDatagrams(t, readAll(t, r4, len(want4)), want4)
	sameDatagrams(t, readAll(t, r6, len(want6)), want6)
	if hasGSO(p) {
		if st := p.Stats().Offload; st.GSOSends != 2 || st.GSOSegments != uint64(len(msgs)) {
			t.Errorf("%d GSO sends carrying %d datagrams, want 2 carrying %d", st.GSOSends, st.GSOSegments, len(msgs))
		}
	}
}

// groSegmentSize finds the UDP_GRO control message among others and
// refuses control data whose lengths do not add up.
func TestGROSegmentSizeParsesControlMessages(t *testing.T) {
	cmsg := func(level, typ int32, data []byte) []byte {
		b := make([]byte, unix.CmsgSpace(len(data)))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = level, typ
		h.SetLen(unix.CmsgLen(len(data)))
		copy(b[unix.CmsgLen(0):], data)
		return b
	}
	seg := binary.NativeEndian.AppendUint32(nil, 1400)
	gro := cmsg(unix.IPPROTO_UDP, unix.UDP_GRO, seg)
	other := cmsg(unix.IPPROTO_IP, unix.IP_TOS, []byte{0})
	short := bytes.Clone(gro)
	(*unix.Cmsghdr)(unsafe.Pointer(&short[0])).SetLen(unix.CmsgLen(0) - 1)
	long := bytes.Clone(gro)
	(*unix.Cmsghdr)(unsafe.Pointer(&long[0])).SetLen(len(gro) + 8)
	for _, c := range []struct {
		name string
		oob  []byte
		want int
	}{
		{"alone", gro, 1400},
		{"after another", append(bytes.Clone(other), gro...), 1400},
		{"none", other, 0},
		{"empty", nil, 0},
		{"truncated header", gro[:unix.SizeofCmsghdr-1], 0},
		{"length below a header", short, 0},
		{"length beyond the buffer", long, 0},
		{"data cut short", gro[:unix.CmsgLen(2)], 0},
	} {
		if got := groSegmentSize(c.oob); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

// EIO from a GSO send means the route cannot offload at all (no checksum
// offload, IPsec): the run goes out one datagram per message, and the port
// stops trying GSO. The kernel's refusal is simulated; the sends are real.
func TestWriteBatchTurnsGSOOffOnEIO(t *testing.T) {
	p := listen4(t, Config{})
	if !hasGSO(p) {
		t.Fatal("no UDP GSO on this kernel")
	}
	w := p.batch.(*mmsgWriter)
	var mu sync.Mutex
	refused := 0
	w.pool.New = func() any {
		s := new(mmsgSend)
		s.fn = func(fd uintptr) bool {
			if s.h.hs[s.h.start].Hdr.Controllen > 0 {
				mu.Lock()
				refused++
				mu.Unlock()
				s.h.got, s.h.errno = 0, unix.EIO
				return true
			}
			return s.h.mmsg(unix.SYS_SENDMMSG, fd)
		}
		return s
	}
	rcv := newSender(t)
	dst := rcv.LocalAddr().(*net.UDPAddr).AddrPort()
	want := make([][]byte, 30)
	msgs := make([]Message, len(want))
	for i := range msgs {
		want[i] = numbered(9, i, 1000)
		msgs[i] = Message{want[i], dst}
	}
	for round := range 2 {
		if n, err := p.WriteBatch(msgs); n != len(msgs) || err != nil {
			t.Fatalf("round %d: WriteBatch = %d, %v", round, n, err)
		}
		sameDatagrams(t, readAll(t, rcv, len(want)), want)
	}
	mu.Lock()
	defer mu.Unlock()
	if refused != 1 || hasGSO(p) {
		t.Fatalf("GSO tried %d times and still on: %v; want one try, then off", refused, hasGSO(p))
	}
	if st := p.Stats(); st.Offload.GSOSends != 0 || st.WriteErrors != 0 {
		t.Fatalf("%d GSO sends, %d write errors; want none", st.Offload.GSOSends, st.WriteErrors)
	}
}
