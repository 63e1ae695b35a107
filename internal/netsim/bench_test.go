package netsim

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRealTimeScheduler pushes packets from one goroutine through the
// real-time scheduler to a receiver and reports delivered packets per
// second of wall time (the brief asks for > 100 k/s on loopback-like links).
func BenchmarkRealTimeScheduler(b *testing.B) {
	for _, bc := range []struct {
		name    string
		link    Link
		handler bool
	}{
		{"zero-latency/read", Link{}, false},
		{"zero-latency/handler", Link{}, true},
		{"1ms-latency/read", Link{Latency: time.Millisecond}, false},
		{"1ms-latency/handler", Link{Latency: time.Millisecond}, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			n := New(Config{Seed: 1})
			defer n.Close()
			a, r := pair(b, n, bc.link, bc.link)
			r.SetReadBuffer(64 << 20)
			var got atomic.Int64
			done := make(chan struct{})
			if bc.handler {
				r.SetHandler(func([]byte, netip.AddrPort) {
					if got.Add(1) == int64(b.N) {
						close(done)
					}
				})
			} else {
				go func() {
					buf := make([]byte, 2048)
					for got.Load() < int64(b.N) {
						if _, _, err := r.ReadFromUDPAddrPort(buf); err != nil {
							return
						}
						got.Add(1)
					}
					close(done)
				}()
			}
			pkt := make([]byte, 100)
			dst := r.LocalAddrPort()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				a.WriteToUDPAddrPort(pkt, dst)
			}
			select {
			case <-done:
			case <-time.After(time.Minute):
				b.Fatalf("delivered %d of %d: %v", got.Load(), b.N, n.Stats())
			}
			el := time.Since(start)
			b.ReportMetric(float64(b.N)/el.Seconds(), "pkts/s")
			if d := n.Stats().TotalDropped(); d != 0 {
				b.Fatalf("%d packets dropped: %v", d, n.Stats())
			}
		})
	}
}

// BenchmarkVirtualTime reports packets per second of wall time through a
// virtual network: two hosts behind NATs exchanging packets over 10ms
// links, all driven by RunFor.
func BenchmarkVirtualTime(b *testing.B) {
	n := New(Config{Seed: 1, Virtual: true})
	defer n.Close()
	nat := n.NewNAT(natIP, NATConfig{Filtering: EndpointIndependent}, Link{Latency: 10 * time.Millisecond})
	a := listen(b, nat.NewHost(privX, Link{}), 1000)
	r := listen(b, n.NewHost(ipB, Link{Latency: 10 * time.Millisecond}), 2000)
	got := 0
	r.SetHandler(func([]byte, netip.AddrPort) { got++ })
	pkt := make([]byte, 100)
	dst := r.LocalAddrPort()
	b.ResetTimer()
	for i := range b.N {
		a.WriteToUDPAddrPort(pkt, dst)
		if i%1000 == 999 {
			n.RunFor(time.Millisecond)
		}
	}
	n.RunFor(time.Second)
	b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "pkts/s")
	if got != b.N {
		b.Fatalf("delivered %d of %d", got, b.N)
	}
}

// BenchmarkBytesPerHost measures the heap cost of a host with one open
// Conn and a handler: 10 000 of them, public or behind 100 NATs.
func BenchmarkBytesPerHost(b *testing.B) {
	const hosts = 10000
	for _, behindNAT := range []bool{false, true} {
		name := "public"
		if behindNAT {
			name = "behind-100-NATs"
		}
		b.Run(name, func(b *testing.B) {
			var perHost float64
			for range b.N {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				n := New(Config{Seed: 1, Virtual: true})
				var nats []*NAT
				if behindNAT {
					for i := range 100 {
						nats = append(nats, n.NewNAT(netip.AddrFrom4([4]byte{198, 51, byte(i / 256), byte(i % 256)}), NATConfig{}, Link{}))
					}
				}
				for i := range hosts {
					ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
					var h *Host
					if behindNAT {
						h = nats[i%100].NewHost(ip, Link{Latency: time.Millisecond})
					} else {
						h = n.NewHost(ip, Link{Latency: time.Millisecond})
					}
					c, err := h.ListenUDP(0)
					if err != nil {
						b.Fatal(err)
					}
					c.SetHandler(func([]byte, netip.AddrPort) {})
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perHost = float64(after.HeapAlloc-before.HeapAlloc) / hosts
				runtime.KeepAlive(n)
				n.Close()
			}
			b.ReportMetric(perHost, "bytes/host")
		})
	}
}

// BenchmarkRealTimeLateness offers 100 k packets/s (100 every millisecond)
// over a path with 2 ms of configured delay and reports how late the
// scheduler delivers them beyond that delay: if it fell behind, lateness
// would grow with the run. Run it with e.g. -benchtime=200000x.
func BenchmarkRealTimeLateness(b *testing.B) {
	n := New(Config{Seed: 1})
	defer n.Close()
	a, r := pair(b, n, Link{Latency: time.Millisecond}, Link{Latency: time.Millisecond})
	base := time.Now()
	late := make([]time.Duration, 0, b.N)
	done := make(chan struct{})
	r.SetHandler(func(pkt []byte, _ netip.AddrPort) {
		sent := time.Duration(int64(binaryBE(pkt[:4]))<<32 | int64(binaryBE(pkt[4:8])))
		late = append(late, time.Since(base)-sent-2*time.Millisecond)
		if len(late) == b.N {
			close(done)
		}
	})
	pkt := make([]byte, 100)
	dst := r.LocalAddrPort()
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; {
		// Catch up with 100 packets per elapsed millisecond, then sleep.
		due := min(b.N, int(time.Since(start)/time.Millisecond+1)*100)
		for ; sent < due; sent++ {
			now := uint64(time.Since(base))
			pkt[0], pkt[1], pkt[2], pkt[3] = byte(now>>56), byte(now>>48), byte(now>>40), byte(now>>32)
			pkt[4], pkt[5], pkt[6], pkt[7] = byte(now>>24), byte(now>>16), byte(now>>8), byte(now)
			a.WriteToUDPAddrPort(pkt, dst)
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatalf("not all delivered: %v", n.Stats())
	}
	b.StopTimer()
	slices.Sort(late)
	b.ReportMetric(float64(late[len(late)/2].Microseconds()), "p50-late-µs")
	b.ReportMetric(float64(late[len(late)*99/100].Microseconds()), "p99-late-µs")
	b.ReportMetric(float64(late[len(late)-1].Microseconds()), "max-late-µs")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

// BenchmarkVirtualCommunity10k is the shape of a community simulation:
// 10 000 hosts behind 1 000 NATs of mixed behaviour, each keeping its
// mapping at a tracker alive and sending one packet a second to a random
// peer's public address (which echoes it when its NAT lets it in), over
// 20 ms links with jitter and 1 % loss. It reports how many virtual
// seconds one wall-clock second simulates.
func BenchmarkVirtualCommunity10k(b *testing.B) {
	const nats, perNAT = 1000, 10
	const virtual = 60 * time.Second
	for range b.N {
		n := New(Config{Seed: 1, Virtual: true})
		clk := n.Clock()
		link := Link{Latency: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.01}
		tracker := listen(b, n.NewHost(srv1IP, link), 7000)
		var public []netip.AddrPort
		tracker.SetHandler(func(_ []byte, from netip.AddrPort) { public = append(public, from) })
		var conns []*Conn
		for i := range nats {
			cfg := NATConfig{Mapping: Behavior(i%3 + 1), Filtering: Behavior(i/3%3 + 1), MappingTimeout: 30 * time.Second}
			nat := n.NewNAT(netip.AddrFrom4([4]byte{100, byte(i >> 8), byte(i), 1}), cfg, link)
			for j := range perNAT {
				c := listen(b, nat.NewHost(netip.AddrFrom4([4]byte{10, 0, 0, byte(j + 2)}), Link{}), 0)
				c.SetHandler(func(pkt []byte, from netip.AddrPort) {
					if pkt[0] == 'p' {
						c.WriteToUDPAddrPort([]byte("echo"), from)
					}
				})
				conns = append(conns, c)
			}
		}
		for _, c := range conns {
			mustWrite(b, c, []byte("hello"), tracker.LocalAddrPort())
		}
		n.RunFor(time.Second)
		rng := rand.New(rand.NewPCG(1, 2))
		for _, c := range conns {
			var keepalive, ping func()
			keepalive = func() {
				c.WriteToUDPAddrPort([]byte("hello"), tracker.LocalAddrPort())
				clk.AfterFunc(15*time.Second, keepalive)
			}
			ping = func() {
				c.WriteToUDPAddrPort([]byte("ping"), public[rng.IntN(len(public))])
				clk.AfterFunc(time.Second, ping)
			}
			clk.AfterFunc(time.Duration(rng.Int64N(int64(15*time.Second))), keepalive)
			clk.AfterFunc(time.Duration(rng.Int64N(int64(time.Second))), ping)
		}
		start := time.Now()
		n.RunFor(virtual)
		wall := time.Since(start)
		st := n.Stats()
		b.ReportMetric(virtual.Seconds()/wall.Seconds(), "virtual-s/wall-s")
		b.ReportMetric(float64(st.Sent)/wall.Seconds(), "pkts/s")
		if st.Sent < 10000*60 || st.Delivered == 0 || st.Dropped(DropNATFiltered) == 0 {
			b.Fatalf("simulation did not run as expected: %v", st)
		}
		n.Close()
	}
}
