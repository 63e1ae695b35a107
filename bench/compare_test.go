package bench

import (
	"slices"
	"testing"

	ipv8 "github.com/ipv8/go-ipv8"
)

// allStacks sets up every compared stack on loopback: go-ipv8's raw-UDP
// transport through the Host only once it exists (until then the
// benchmark says why it is missing and measures the others), and its
// pieces composed without the Host (stackUDPParts) in any case.
func allStacks(b *testing.B) []*stack {
	sts := []*stack{
		newBareQUICStack(b),
		newLibp2pStack(b, stackLibp2pQUIC),
		newLibp2pStack(b, stackLibp2pTCP),
	}
	q, err := newIPv8Stack(b, stackIPv8QUIC, ipv8.QUIC)
	if err != nil {
		b.Fatal(err)
	}
	sts = append(sts, q, newUDPPartsStack(b))
	if why := udpUnavailable(); why != "" {
		b.Log(why)
		return sts
	}
	u, err := newIPv8Stack(b, stackIPv8UDP, ipv8.UDP)
	if err != nil {
		b.Fatal(err)
	}
	return append(sts, u)
}

// report reports, for every stack, the median of its per-iteration
// figures as unit, and the median of its per-iteration ratios to peer's
// figure. Ratios are taken within an iteration, where the stacks ran back
// to back, so that a burst of load from other work on the machine moves
// both sides of a ratio; the median drops the iterations a burst hit
// unevenly.
func report(b *testing.B, sts []*stack, fig map[string][]float64, unit, peer string) {
	for _, st := range sts {
		b.ReportMetric(medianOf(fig[st.name]), st.name+"-"+unit)
	}
	for _, st := range sts {
		if st.name == peer {
			continue
		}
		r := make([]float64, len(fig[st.name]))
		for i, v := range fig[st.name] {
			r[i] = v / fig[peer][i]
		}
		b.ReportMetric(medianOf(r), st.name+"/"+peer)
	}
}

func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkOneStream moves transferSize bytes over one stream of an
// established connection with every stack, the stacks interleaved in each
// iteration so that machine noise hits them alike, and reports each
// stack's median MB/s and median ratio to bare quic-go (target for
// ipv8-udp: ≥ 1.5).
func BenchmarkOneStream(b *testing.B) {
	sts := allStacks(b)
	mbps := make(map[string][]float64)
	b.ResetTimer()
	for range b.N {
		for _, st := range sts {
			d, err := st.transfer(transferSize)
			if err != nil {
				b.Fatal(err)
			}
			mbps[st.name] = append(mbps[st.name], transferSize/d.Seconds()/1e6)
		}
	}
	b.StopTimer()
	report(b, sts, mbps, "MB/s", stackQUIC)
	b.ReportMetric(0, "ns/op")
}

// BenchmarkConnectFirstRoundTrip times, for each stack, a fresh client
// (own identity and socket, made untimed) going from nothing to a
// connection, a stream opened, one byte written and echoed back. It
// reports each stack's median in µs and median ratio to go-libp2p over
// QUIC (target for ipv8-udp: ≤ 0.25).
func BenchmarkConnectFirstRoundTrip(b *testing.B) {
	sts := allStacks(b)
	if udpUnavailable() == "" {
		e, err := newIPv8EarlyStack(b)
		if err != nil {
			b.Fatal(err)
		}
		sts = append(sts, e)
	}
	us := make(map[string][]float64)
	b.ResetTimer()
	for range b.N {
		for _, st := range sts {
			d, err := connectEcho(st)
			if err != nil {
				b.Fatal(err)
			}
			us[st.name] = append(us[st.name], float64(d)/1e3)
		}
	}
	b.StopTimer()
	report(b, sts, us, "us", stackLibp2pQUIC)
	b.ReportMetric(0, "ns/op")
}

// Each iteration of BenchmarkHandshakes makes handshakesPerRound
// connections per stack, handshakesInFlight at a time.
const (
	handshakesPerRound = 32
	handshakesInFlight = 4
)

// BenchmarkHandshakes counts connections established and authenticated per
// second, both ends on this machine, a few in flight: per round and stack,
// handshakesPerRound fresh clients (made untimed) connect, and the clock
// stops when every client has connected and the server has completed
// every connection. It reports each stack's median handshakes/s and
// median ratio to bare quic-go (target for ipv8-udp: ≥ 5), and the median
// CPU time both ends used per handshake.
func BenchmarkHandshakes(b *testing.B) {
	sts := allStacks(b)
	rate := make(map[string][]float64)
	cpu := make(map[string][]float64)
	b.ResetTimer()
	for range b.N {
		for _, st := range sts {
			d, c, err := handshakes(st, handshakesPerRound, handshakesInFlight)
			if err != nil {
				b.Fatal(err)
			}
			rate[st.name] = append(rate[st.name], handshakesPerRound/d.Seconds())
			cpu[st.name] = append(cpu[st.name], float64(c)/1e3/handshakesPerRound)
		}
	}
	b.StopTimer()
	report(b, sts, rate, "hs/s", stackQUIC)
	// CPU time of both ends per handshake: what the rate would be bound by
	// on an idle machine, and a figure other load cannot inflate.
	for _, st := range sts {
		b.ReportMetric(medianOf(cpu[st.name]), st.name+"-cpu-us/hs")
	}
	// The ratio by CPU time (handshakes per CPU-second against quic-go's,
	// per iteration): steadier than the rate's, which also moves with how
	// busy four handshakes in flight keep the two cores.
	for _, st := range sts {
		if st.name == stackQUIC {
			continue
		}
		r := make([]float64, len(cpu[st.name]))
		for i, c := range cpu[st.name] {
			r[i] = cpu[stackQUIC][i] / c
		}
		b.ReportMetric(medianOf(r), st.name+"/quic-go-by-cpu")
	}
	b.ReportMetric(0, "ns/op")
}
