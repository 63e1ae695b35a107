package netsim

import (
	"math"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestVirtualRTTIsTwiceTheSumOfLatencies(t *testing.T) {
	n := virtualNet(t, 1)
	a, b := pair(t, n, Link{Latency: 10 * time.Millisecond}, Link{Latency: 5 * time.Millisecond})
	b.SetHandler(func(pkt []byte, from netip.AddrPort) { b.WriteToUDPAddrPort(pkt, from) })
	ra := record(a, n.Clock())
	start := n.Clock().Now()
	mustWrite(t, a, []byte("ping"), b.LocalAddrPort())
	n.RunFor(time.Second)
	p := ra.all()
	if len(p) != 1 {
		t.Fatalf("got %d replies, want 1", len(p))
	}
	if rtt := p[0].at.Sub(start); rtt != 30*time.Millisecond {
		t.Fatalf("RTT %v, want exactly 30ms (2 × (10ms + 5ms))", rtt)
	}
}

func TestRealTimeRTTMatchesConfigured(t *testing.T) {
	n := realNet(t, 1)
	a, b := pair(t, n, Link{Latency: 10 * time.Millisecond}, Link{Latency: 5 * time.Millisecond})
	b.SetHandler(func(pkt []byte, from netip.AddrPort) { b.WriteToUDPAddrPort(pkt, from) })
	buf := make([]byte, 100)
	var rtts []time.Duration
	for i := range 10 {
		start := time.Now()
		mustWrite(t, a, numbered(uint32(i), 8), b.LocalAddrPort())
		a.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := a.ReadFromUDPAddrPort(buf); err != nil {
			t.Fatal(err)
		}
		rtts = append(rtts, time.Since(start))
	}
	slices.Sort(rtts)
	// The minimum is the network's delay plus scheduling noise; timers
	// never fire early, so it cannot be below 30ms.
	if rtts[0] < 30*time.Millisecond || rtts[0] > 50*time.Millisecond {
		t.Fatalf("min RTT %v, want 30ms (+ scheduling noise); all %v", rtts[0], rtts)
	}
	if med := rtts[len(rtts)/2]; med > 80*time.Millisecond {
		t.Fatalf("median RTT %v, want about 30ms", med)
	}
}

func TestBandwidthSerialisesAtConfiguredRate(t *testing.T) {
	n := virtualNet(t, 1)
	const bw = 1_000_000 // bytes/s
	a, b := pair(t, n, Link{Bandwidth: bw, QueueBytes: 10 << 20}, Link{})
	rb := record(b, n.Clock())
	start := n.Clock().Now()
	const count, size = 2000, 1000
	for i := range count {
		mustWrite(t, a, numbered(uint32(i), size), b.LocalAddrPort())
	}
	n.RunFor(5 * time.Second)
	p := rb.all()
	if len(p) != count {
		t.Fatalf("delivered %d, want %d (queue was big enough)", len(p), count)
	}
	elapsed := p[len(p)-1].at.Sub(start)
	if want := 2 * time.Second; elapsed != want {
		t.Fatalf("last packet after %v, want %v (%d bytes at %d B/s)", elapsed, want, count*size, bw)
	}
	// Packets leave one transmission time apart.
	if gap := p[1].at.Sub(p[0].at); gap != time.Millisecond {
		t.Fatalf("spacing %v, want 1ms", gap)
	}
}

func TestRealTimeThroughputMatchesConfigured(t *testing.T) {
	n := realNet(t, 1)
	const bw = 2_000_000
	a, b := pair(t, n, Link{Bandwidth: bw, QueueBytes: 4 << 20}, Link{})
	b.SetReadBuffer(4 << 20)
	const count, size = 1000, 1000 // 1 MB: 0.5 s at 2 MB/s
	start := time.Now()
	for i := range count {
		mustWrite(t, a, numbered(uint32(i), size), b.LocalAddrPort())
	}
	buf := make([]byte, 2000)
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range count {
		if _, _, err := b.ReadFromUDPAddrPort(buf); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
	elapsed := time.Since(start)
	rate := float64(count*size) / elapsed.Seconds()
	// Never faster than the link; slower only by scheduling noise on a
	// loaded machine (the virtual-time test above proves the exact rate).
	if rate > bw*1.02 || rate < bw*0.6 {
		t.Fatalf("throughput %.0f B/s over %v, want about %d", rate, elapsed, bw)
	}
}

func TestFullQueueTailDrops(t *testing.T) {
	n := virtualNet(t, 1)
	a, b := pair(t, n, Link{Bandwidth: 100_000, QueueBytes: 10_000}, Link{})
	rb := record(b, n.Clock())
	for i := range 50 {
		mustWrite(t, a, numbered(uint32(i), 1000), b.LocalAddrPort())
	}
	n.RunFor(time.Second)
	// The queue holds 10 packets of 1000 bytes (the one on the wire
	// included); the rest of the burst is dropped at the tail.
	if got, want := rb.seqs(), []uint32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if d := n.Stats().Dropped(DropQueue); d != 40 {
		t.Fatalf("queue drops %d, want 40", d)
	}
	// Once the queue drains, packets pass again.
	mustWrite(t, a, numbered(99, 1000), b.LocalAddrPort())
	n.RunFor(time.Second)
	if rb.len() != 11 {
		t.Fatalf("packet after the queue drained was not delivered")
	}
}

func TestDefaultQueueIsATenthOfASecond(t *testing.T) {
	l := Link{Bandwidth: 1_000_000, DownBandwidth: 8_000_000}
	if q := l.queueBytes(l.rate(false)); q != 100_000 {
		t.Fatalf("default up queue %d, want 100000", q)
	}
	if q := l.queueBytes(l.rate(true)); q != 800_000 {
		t.Fatalf("default down queue %d, want 800000", q)
	}
	l = Link{Bandwidth: 10_000}
	if q := l.queueBytes(l.rate(true)); q != minQueueBytes {
		t.Fatalf("default queue of a slow link %d, want the minimum %d", q, minQueueBytes)
	}
}

func TestAsymmetricLinkRates(t *testing.T) {
	n := virtualNet(t, 1)
	adsl := Link{Bandwidth: 100_000, DownBandwidth: 1_000_000, QueueBytes: 1 << 20}
	a, b := pair(t, n, adsl, Link{})
	ra, rb := record(a, n.Clock()), record(b, n.Clock())
	start := n.Clock().Now()
	for i := range 100 {
		mustWrite(t, a, numbered(uint32(i), 1000), b.LocalAddrPort()) // up: 100 kB at 100 kB/s
		mustWrite(t, b, numbered(uint32(i), 1000), a.LocalAddrPort()) // down: 100 kB at 1 MB/s
	}
	n.RunFor(5 * time.Second)
	if up := rb.all()[99].at.Sub(start); up != time.Second {
		t.Fatalf("upload took %v, want 1s", up)
	}
	if down := ra.all()[99].at.Sub(start); down != 100*time.Millisecond {
		t.Fatalf("download took %v, want 100ms", down)
	}
}

// Two hosts behind one NAT send as fast as they can; the NAT's WAN link is
// the bottleneck they share, with one FIFO queue.
func TestSharedNATLinkIsABottleneck(t *testing.T) {
	n := virtualNet(t, 1)
	const bw = 1_000_000
	nat := n.NewNAT(netip.MustParseAddr("198.51.100.1"), NATConfig{}, Link{Bandwidth: bw})
	h1 := listen(t, nat.NewHost(netip.MustParseAddr("10.0.0.1"), Link{Bandwidth: bw}), 1)
	h2 := listen(t, nat.NewHost(netip.MustParseAddr("10.0.0.2"), Link{Bandwidth: bw}), 2)
	srv := listen(t, n.NewHost(ipB, Link{}), 3)
	from := map[netip.Addr]int{}
	bytes := 0
	srv.SetHandler(func(pkt []byte, src netip.AddrPort) { bytes += len(pkt); from[src.Addr()]++ })
	// Each host offers 1 MB/s for 2 s: 2 MB/s into a 1 MB/s link.
	clk := n.Clock()
	var tick func()
	sent := 0
	tick = func() {
		if sent >= 2000 {
			return
		}
		sent++
		mustWrite(t, h1, make([]byte, 1000), srv.LocalAddrPort())
		mustWrite(t, h2, make([]byte, 1000), srv.LocalAddrPort())
		clk.AfterFunc(time.Millisecond, tick)
	}
	tick()
	n.RunFor(2 * time.Second)
	got := float64(bytes) / 2
	if got < bw*0.93 || got > bw*1.0 {
		t.Fatalf("bottleneck carried %.0f B/s, want about %d", got, bw)
	}
	st := n.Stats()
	if st.Dropped(DropQueue) < 1500 {
		t.Fatalf("queue drops %d, want about half of the 4000 offered: %v", st.Dropped(DropQueue), st)
	}
	// Both flows get through the shared queue (FIFO, no fairness promised).
	for ip, c := range from {
		if c < 500 {
			t.Fatalf("flow from %s got only %d packets through", ip, c)
		}
	}
}

func lossyScenario(t *testing.T, seed uint64, l Link, count int) (delivered []uint32, st Stats) {
	t.Helper()
	n := virtualNet(t, seed)
	a, b := pair(t, n, l, Link{})
	rb := record(b, n.Clock())
	for i := range count {
		mustWrite(t, a, numbered(uint32(i), 100), b.LocalAddrPort())
	}
	n.RunFor(time.Minute)
	return rb.seqs(), n.Stats()
}

func TestLossRateMatchesConfigured(t *testing.T) {
	const count = 20000
	for _, loss := range []float64{0.01, 0.1, 0.5} {
		got, st := lossyScenario(t, 7, Link{Loss: loss}, count)
		rate := 1 - float64(len(got))/count
		// 5 standard deviations of a binomial.
		tol := 5 * math.Sqrt(loss*(1-loss)/count)
		if math.Abs(rate-loss) > tol {
			t.Fatalf("loss %.4f, want %.2f ± %.4f", rate, loss, tol)
		}
		if st.Dropped(DropLoss) != uint64(count-len(got)) || st.Sent != count {
			t.Fatalf("stats do not match: %v", st)
		}
	}
}

func TestSameSeedSameDrops(t *testing.T) {
	l := Link{Loss: 0.2, Jitter: 3 * time.Millisecond, Reorder: 0.05, Duplicate: 0.05, Latency: time.Millisecond}
	first, _ := lossyScenario(t, 42, l, 5000)
	again, _ := lossyScenario(t, 42, l, 5000)
	other, _ := lossyScenario(t, 43, l, 5000)
	if !slices.Equal(first, again) {
		t.Fatal("same seed, same sends: different deliveries")
	}
	if slices.Equal(first, other) {
		t.Fatal("different seeds gave identical deliveries")
	}
}

// In real-time mode the drop decisions of a link depend only on the seed
// and the order of packets entering it, not on timing.
func TestRealTimeSameSeedSameDrops(t *testing.T) {
	run := func() []uint32 {
		n := New(Config{Seed: 9})
		defer n.Close()
		a, b := pair(t, n, Link{Loss: 0.3}, Link{Loss: 0.1})
		rb := record(b, n.Clock())
		for i := range 2000 {
			mustWrite(t, a, numbered(uint32(i), 64), b.LocalAddrPort())
		}
		waitFor(t, "all packets processed", func() bool {
			st := n.Stats()
			return st.Delivered+st.TotalDropped() == 2000 && uint64(rb.len()) == st.Delivered
		})
		return rb.seqs()
	}
	first, second := run(), run()
	if !slices.Equal(first, second) {
		t.Fatalf("same seed: %d and %d packets delivered, different sets", len(first), len(second))
	}
	if len(first) < 1100 || len(first) > 1400 {
		t.Fatalf("delivered %d of 2000 at 30%% + 10%% loss", len(first))
	}
}

func TestDuplicateDeliversExtraCopies(t *testing.T) {
	const count = 10000
	got, st := lossyScenario(t, 3, Link{Duplicate: 0.1}, count)
	extra := len(got) - count
	if extra < 850 || extra > 1150 {
		t.Fatalf("%d duplicates of %d packets, want about 1000", extra, count)
	}
	if st.Duplicated != uint64(extra) {
		t.Fatalf("Stats.Duplicated %d, want %d", st.Duplicated, extra)
	}
	// Every packet arrives at least once, a duplicate right after its original.
	seen := map[uint32]int{}
	for i, s := range got {
		seen[s]++
		if seen[s] == 2 && got[i-1] != s {
			t.Fatalf("duplicate of %d does not follow it", s)
		}
	}
	if len(seen) != count {
		t.Fatalf("%d distinct packets arrived, want %d", len(seen), count)
	}
}

func TestReorderDelaysPacketsBeyondLaterOnes(t *testing.T) {
	n := virtualNet(t, 5)
	a, b := pair(t, n, Link{Latency: 5 * time.Millisecond, Reorder: 0.1, ReorderDelay: 20 * time.Millisecond}, Link{})
	rb := record(b, n.Clock())
	clk := n.Clock()
	sentAt := map[uint32]time.Time{}
	for i := range 1000 {
		sentAt[uint32(i)] = clk.Now()
		mustWrite(t, a, numbered(uint32(i), 100), b.LocalAddrPort())
		n.RunFor(time.Millisecond)
	}
	n.RunFor(time.Second)
	p := rb.all()
	if len(p) != 1000 {
		t.Fatalf("delivered %d, want 1000", len(p))
	}
	late := 0
	maxSeen := int64(-1)
	for _, g := range p {
		s := binaryBE(g.data)
		delay := g.at.Sub(sentAt[s])
		held := false
		switch delay {
		case 5 * time.Millisecond:
		case 25 * time.Millisecond:
			held = true
			late++
		default:
			t.Fatalf("packet %d took %v, want 5ms or 25ms", s, delay)
		}
		// A held-back packet is overtaken by the packets sent in the 20ms
		// after it (there are none after the last); no other packet is.
		overtaken := int64(s) < maxSeen
		if overtaken != (held && s != 999) {
			t.Fatalf("packet %d: held back %v, overtaken %v", s, held, overtaken)
		}
		maxSeen = max(maxSeen, int64(s))
	}
	if uint64(late) != n.Stats().Reordered || late < 70 || late > 130 {
		t.Fatalf("%d packets held back (stats %d), want about 100", late, n.Stats().Reordered)
	}
}

func TestJitterVariesDelayWithoutReordering(t *testing.T) {
	n := virtualNet(t, 5)
	a, b := pair(t, n, Link{Latency: 10 * time.Millisecond, Jitter: 20 * time.Millisecond}, Link{})
	rb := record(b, n.Clock())
	clk := n.Clock()
	sentAt := map[uint32]time.Time{}
	for i := range 500 {
		sentAt[uint32(i)] = clk.Now()
		mustWrite(t, a, numbered(uint32(i), 100), b.LocalAddrPort())
		n.RunFor(2 * time.Millisecond)
	}
	n.RunFor(time.Second)
	seqs := rb.seqs()
	if len(seqs) != 500 || !slices.IsSorted(seqs) {
		t.Fatalf("jitter reordered packets or lost some: %d delivered", len(seqs))
	}
	lo, hi := time.Hour, time.Duration(0)
	for _, g := range rb.all() {
		d := g.at.Sub(sentAt[binaryBE(g.data)])
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 10*time.Millisecond || hi < 25*time.Millisecond || hi >= 30*time.Millisecond+2*time.Millisecond {
		t.Fatalf("delays span [%v, %v], want within [10ms, 30ms) and spread", lo, hi)
	}
}

func TestPacketsAboveMTUAreDropped(t *testing.T) {
	n := virtualNet(t, 1)
	a, b := pair(t, n, Link{}, Link{MTU: 1280})
	c := listen(t, n.NewHost(ipC, Link{}), 3000)
	rb, rc := record(b, n.Clock()), record(c, n.Clock())
	mustWrite(t, a, make([]byte, DefaultMTU), c.LocalAddrPort())   // fits
	mustWrite(t, a, make([]byte, DefaultMTU+1), c.LocalAddrPort()) // too big for the network
	mustWrite(t, a, make([]byte, 1280), b.LocalAddrPort())         // fits b's link
	mustWrite(t, a, make([]byte, 1281), b.LocalAddrPort())         // too big for b's link
	n.RunFor(time.Second)
	if rb.len() != 1 || rc.len() != 1 {
		t.Fatalf("b got %d, c got %d, want 1 each", rb.len(), rc.len())
	}
	if d := n.Stats().Dropped(DropMTU); d != 2 {
		t.Fatalf("MTU drops %d, want 2", d)
	}
}

func binaryBE(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
