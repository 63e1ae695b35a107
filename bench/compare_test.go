package bench

import (
	"slices"
	"testing"
	"time"

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

// reportRatios reports every stack's figure divided by the peer's.
func reportRatios(b *testing.B, sts []*stack, fig map[string]float64, peer string) {
	for _, st := range sts {
		if st.name != peer {
			b.ReportMetric(fig[st.name]/fig[peer], st.name+"/"+peer)
		}
	}
}

// BenchmarkOneStream moves transferSize bytes over one stream of an
// established connection with every stack, the stacks interleaved in each
// iteration so that machine noise hits them alike, and reports MB/s per
// stack and each stack's ratio to bare quic-go (target for ipv8-udp:
// ≥ 1.5).
func BenchmarkOneStream(b *testing.B) {
	sts := allStacks(b)
	total := make(map[string]time.Duration)
	b.ResetTimer()
	for range b.N {
		for _, st := range sts {
			d, err := st.transfer(transferSize)
			if err != nil {
				b.Fatal(err)
			}
			total[st.name] += d
		}
	}
	b.StopTimer()
	mbps := make(map[string]float64)
	for _, st := range sts {
		mbps[st.name] = float64(b.N) * transferSize / total[st.name].Seconds() / 1e6
		b.ReportMetric(mbps[st.name], st.name+"-MB/s")
	}
	reportRatios(b, sts, mbps, stackQUIC)
	b.ReportMetric(0, "ns/op")
}

// BenchmarkConnectFirstRoundTrip times, for each stack, a fresh client
// (own identity and socket, made untimed) going from nothing to a
// connection, a stream opened, one byte written and echoed back. It
// reports the median per stack in µs and each stack's ratio to go-libp2p
// over QUIC (target for ipv8-udp: ≤ 0.25).
func BenchmarkConnectFirstRoundTrip(b *testing.B) {
	sts := allStacks(b)
	samples := make(map[string][]time.Duration)
	b.ResetTimer()
	for range b.N {
		for _, st := range sts {
			d, err := connectEcho(st)
			if err != nil {
				b.Fatal(err)
			}
			samples[st.name] = append(samples[st.name], d)
		}
	}
	b.StopTimer()
	us := make(map[string]float64)
	for _, st := range sts {
		us[st.name] = float64(median(samples[st.name])) / 1e3
		b.ReportMetric(us[st.name], st.name+"-us")
	}
	reportRatios(b, sts, us, stackLibp2pQUIC)
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
// every connection. It reports handshakes/s per stack and each stack's
// ratio to bare quic-go (target for ipv8-udp: ≥ 5).
func BenchmarkHandshakes(b *testing.B) {
	sts := allStacks(b)
	total := make(map[string]time.Duration)
	b.ResetTimer()
	for range b.N {
		for _, st := range sts {
			d, err := handshakes(st, handshakesPerRound, handshakesInFlight)
			if err != nil {
				b.Fatal(err)
			}
			total[st.name] += d
		}
	}
	b.StopTimer()
	rate := make(map[string]float64)
	for _, st := range sts {
		rate[st.name] = float64(b.N*handshakesPerRound) / total[st.name].Seconds()
		b.ReportMetric(rate[st.name], st.name+"-hs/s")
	}
	reportRatios(b, sts, rate, stackQUIC)
	b.ReportMetric(0, "ns/op")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
