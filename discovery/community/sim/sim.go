// Package sim runs the community discovery scenario on internal/netsim's
// virtual time: N hosts bootstrap from a few trackers, a fraction of them
// behind port-restricted NATs (endpoint-independent mapping,
// address-and-port-dependent filtering), and each walks until it has its
// target number of verified peers. It reports when each host got there,
// how many NATed hosts verified other NATed hosts (which only puncture
// makes possible), and the memory the run took. The package's tests and
// `ipv8 sim` run it.
package sim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ipv8/go-ipv8/discovery/community"
	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/internal/netsim"
	"github.com/ipv8/go-ipv8/peer"
)

// Config describes a scenario. Zero values take the defaults in brackets.
type Config struct {
	Nodes       int           // hosts besides the trackers
	Trackers    int           // bootstrap servers (3)
	NATFraction float64       // of the hosts behind port-restricted NATs; negative for none (0.3)
	Duration    time.Duration // simulated time at most (60 s)
	Target      int           // verified peers a host must reach (20)
	Seed        uint64        // (1)
	// StopWhenConverged ends the run as soon as every host has reached
	// the target.
	StopWhenConverged bool
	// DisablePuncture makes every host ignore puncture requests (to show
	// what puncture does).
	DisablePuncture bool
	// Strategy of the hosts (community.RandomWalk{}).
	Strategy community.Strategy
	// LatencyMin and LatencyMax bound each access link's one-way latency,
	// drawn uniformly per host (5 ms, 45 ms); Loss is each link's loss rate.
	LatencyMin, LatencyMax time.Duration
	Loss                   float64
	// Sample is how often (simulated) the hosts' peer counts are checked
	// (250 ms).
	Sample time.Duration
	// Progress, when set, is called after every sample.
	Progress func(Progress)
}

// Progress is the state of a running scenario.
type Progress struct {
	Simulated time.Duration
	Converged int // hosts that have reached the target (once)
	Nodes     int
}

// Result is what a scenario measured.
type Result struct {
	Nodes, NATNodes int
	// Converged hosts have held at least Target verified peers at some
	// sample; NATConverged counts those behind NATs.
	Converged, NATConverged int
	// AllConvergedAt is the simulated time at which the last host reached
	// the target; negative if some never did.
	AllConvergedAt time.Duration
	// P50, P90 and Max are percentiles of the time hosts took to reach the
	// target (of those that did).
	P50, P90, Max time.Duration
	// At the end of the run: the fewest and mean verified peers of a host;
	// NATedWithNATPeer counts NATed hosts with at least one NATed verified
	// peer, and NATPairs the NATed–NATed peer-table entries in total.
	MinPeers         int
	MeanPeers        float64
	NATedWithNATPeer int
	NATPairs         int
	Stats            community.Stats // summed over hosts (not trackers)
	Net              netsim.Stats
	Simulated        time.Duration
	Wall             time.Duration
	// PeakHeap is the largest live heap seen at a sample; PeakRSS the
	// process's peak resident set (Linux VmHWM; 0 elsewhere).
	PeakHeap, PeakRSS uint64
}

type node struct {
	c       *community.Community
	nat     bool
	reached time.Duration // -1 until the host reached Target
}

// Run runs the scenario.
func Run(cfg Config) (*Result, error) {
	if cfg.Nodes <= 0 {
		return nil, fmt.Errorf("sim: Nodes must be positive")
	}
	if cfg.Trackers <= 0 {
		cfg.Trackers = 3
	}
	if cfg.NATFraction == 0 {
		cfg.NATFraction = 0.3
	}
	cfg.NATFraction = max(cfg.NATFraction, 0)
	if cfg.Duration <= 0 {
		cfg.Duration = 60 * time.Second
	}
	if cfg.Target <= 0 {
		cfg.Target = community.DefaultTargetPeers
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.LatencyMax <= 0 {
		cfg.LatencyMin, cfg.LatencyMax = 5*time.Millisecond, 45*time.Millisecond
	}
	if cfg.Sample <= 0 {
		cfg.Sample = 250 * time.Millisecond
	}
	start := time.Now()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x73696d))
	keyRand := rand.NewChaCha8([32]byte{byte(cfg.Seed), byte(cfg.Seed >> 8), byte(cfg.Seed >> 16), 's', 'i', 'm'})
	n := netsim.New(netsim.Config{Seed: cfg.Seed, Virtual: true})
	defer n.Close()
	// Every key is verified by many hosts but none sends a stream: no
	// verification tables (they would cost 165 KiB per key).
	keys := community.NewKeyCacheWith(community.KeyCacheConfig{Size: cfg.Nodes + cfg.Trackers + 16, Tables: -1})
	var cid wire.CommunityID
	copy(cid[:], "go-ipv8 sim community")

	link := func() netsim.Link {
		lat := cfg.LatencyMin + time.Duration(rng.Int64N(int64(cfg.LatencyMax-cfg.LatencyMin)+1))
		return netsim.Link{Latency: lat, Jitter: 2 * time.Millisecond, Loss: cfg.Loss}
	}
	newCommunity := func(conn *netsim.Conn, seed uint64, ccfg community.Config) (*community.Community, error) {
		k, err := peer.GenerateKey(keyRand)
		if err != nil {
			return nil, err
		}
		ccfg.ID, ccfg.Key, ccfg.Clock, ccfg.Seed = cid, k, n.Clock(), seed
		ep := community.NewEndpoint(NewPort(conn), keys)
		return community.New(ep, ccfg)
	}

	var trackers []netip.AddrPort
	for i := range cfg.Trackers {
		h := n.NewHost(netip.AddrFrom4([4]byte{20, 0, 0, byte(i + 1)}), netsim.Link{Latency: 5 * time.Millisecond})
		conn, err := h.ListenUDP(6421)
		if err != nil {
			return nil, err
		}
		t, err := newCommunity(conn, cfg.Seed<<20+uint64(i)+1, community.Config{AnswerOnly: true, MaxPeers: -1})
		if err != nil {
			return nil, err
		}
		t.Start()
		trackers = append(trackers, conn.LocalAddrPort())
	}

	nodes := make([]node, cfg.Nodes)
	res := &Result{Nodes: cfg.Nodes, AllConvergedAt: -1}
	for i := range nodes {
		ip := [4]byte{21, byte(i >> 16), byte(i >> 8), byte(i)}
		nodes[i].reached = -1
		var h *netsim.Host
		if rng.Float64() < cfg.NATFraction {
			ip[0] = 31
			nat := n.NewNAT(netip.AddrFrom4(ip), netsim.NATConfig{
				Mapping:   netsim.EndpointIndependent,
				Filtering: netsim.AddressAndPortDependent,
			}, link())
			h = nat.NewHost(netip.AddrFrom4([4]byte{192, 168, 1, 2}), netsim.Link{})
			nodes[i].nat = true
			res.NATNodes++
		} else {
			h = n.NewHost(netip.AddrFrom4(ip), link())
		}
		conn, err := h.ListenUDP(8090)
		if err != nil {
			return nil, err
		}
		c, err := newCommunity(conn, cfg.Seed<<20+uint64(cfg.Trackers+i)+1, community.Config{
			Bootstrap:       trackers,
			Strategy:        cfg.Strategy,
			TargetPeers:     cfg.Target,
			DisablePuncture: cfg.DisablePuncture,
			Advertise:       &wire.Advert{Flags: wire.CapNoise},
		})
		if err != nil {
			return nil, err
		}
		c.Start()
		nodes[i].c = c
	}

	converged := 0
	var sim time.Duration
	for sim < cfg.Duration {
		step := min(cfg.Sample, cfg.Duration-sim)
		n.RunFor(step)
		sim += step
		for i := range nodes {
			if nodes[i].reached < 0 && nodes[i].c.PeerCount() >= cfg.Target {
				nodes[i].reached = sim
				converged++
			}
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		res.PeakHeap = max(res.PeakHeap, ms.HeapInuse)
		if cfg.Progress != nil {
			cfg.Progress(Progress{Simulated: sim, Converged: converged, Nodes: cfg.Nodes})
		}
		if converged == cfg.Nodes && cfg.StopWhenConverged {
			break
		}
	}
	res.Simulated = sim

	var reached []time.Duration
	natIP := func(a netip.AddrPort) bool { return a.Addr().Is4() && a.Addr().As4()[0] == 31 }
	res.MinPeers = -1
	total := 0
	for i := range nodes {
		nd := &nodes[i]
		if nd.reached >= 0 {
			res.Converged++
			reached = append(reached, nd.reached)
			if nd.nat {
				res.NATConverged++
			}
		}
		peers := nd.c.Peers()
		total += len(peers)
		if res.MinPeers < 0 || len(peers) < res.MinPeers {
			res.MinPeers = len(peers)
		}
		if nd.nat {
			pairs := 0
			for _, p := range peers {
				if natIP(p.Addr) {
					pairs++
				}
			}
			res.NATPairs += pairs
			if pairs > 0 {
				res.NATedWithNATPeer++
			}
		}
		addStats(&res.Stats, nd.c.Stats())
	}
	res.MeanPeers = float64(total) / float64(len(nodes))
	if len(reached) > 0 {
		slices.Sort(reached)
		res.P50 = reached[len(reached)/2]
		res.P90 = reached[len(reached)*9/10]
		res.Max = reached[len(reached)-1]
		if len(reached) == len(nodes) {
			res.AllConvergedAt = res.Max
		}
	}
	res.Net = n.Stats()
	res.Wall = time.Since(start)
	res.PeakRSS = peakRSS()
	return res, nil
}

func addStats(sum *community.Stats, s community.Stats) {
	sum.Received += s.Received
	sum.Malformed += s.Malformed
	sum.BadSignature += s.BadSignature
	sum.UnknownMessage += s.UnknownMessage
	sum.FromSelf += s.FromSelf
	sum.PeerLimit += s.PeerLimit
	sum.RequestsSent += s.RequestsSent
	sum.RequestsIn += s.RequestsIn
	sum.ResponsesIn += s.ResponsesIn
	sum.PunctureReqSent += s.PunctureReqSent
	sum.PunctureReqIn += s.PunctureReqIn
	sum.PunctureIgnored += s.PunctureIgnored
	sum.PuncturesSent += s.PuncturesSent
	sum.PuncturesIn += s.PuncturesIn
	sum.WalkTimeouts += s.WalkTimeouts
	sum.Dropped += s.Dropped
	sum.Delivered += s.Delivered
}

// peakRSS reads the process's peak resident set from /proc (Linux).
func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// String summarises the result on a few lines.
func (r *Result) String() string {
	var b strings.Builder
	all := "not all hosts converged"
	if r.AllConvergedAt >= 0 {
		all = fmt.Sprintf("all hosts converged at %.1fs", r.AllConvergedAt.Seconds())
	}
	fmt.Fprintf(&b, "%d hosts (%d behind port-restricted NATs), %.1fs simulated in %.1fs wall: %s\n",
		r.Nodes, r.NATNodes, r.Simulated.Seconds(), r.Wall.Seconds(), all)
	fmt.Fprintf(&b, "reached target: %d/%d (NATed %d/%d); time to target p50 %.1fs p90 %.1fs max %.1fs\n",
		r.Converged, r.Nodes, r.NATConverged, r.NATNodes, r.P50.Seconds(), r.P90.Seconds(), r.Max.Seconds())
	fmt.Fprintf(&b, "peers at end: min %d mean %.1f; NATed hosts with a NATed peer: %d/%d (%d NAT-NAT entries)\n",
		r.MinPeers, r.MeanPeers, r.NATedWithNATPeer, r.NATNodes, r.NATPairs)
	fmt.Fprintf(&b, "punctures: %d requested, %d sent, %d received; walk timeouts %d; bad signatures %d\n",
		r.Stats.PunctureReqSent, r.Stats.PuncturesSent, r.Stats.PuncturesIn, r.Stats.WalkTimeouts, r.Stats.BadSignature)
	fmt.Fprintf(&b, "network: %d packets sent, %d delivered, %d dropped (%d NAT-filtered)\n",
		r.Net.Sent, r.Net.Delivered, r.Net.TotalDropped(), r.Net.Dropped(netsim.DropNATFiltered))
	fmt.Fprintf(&b, "memory: peak live heap %.1f MiB, peak RSS %.1f MiB", float64(r.PeakHeap)/(1<<20), float64(r.PeakRSS)/(1<<20))
	return b.String()
}
