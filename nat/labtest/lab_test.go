package labtest

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/nat"
	"github.com/ipv8/go-ipv8/nat/natlab"
	"github.com/ipv8/go-ipv8/nat/punch"
	"github.com/ipv8/go-ipv8/nat/relay"
	"github.com/ipv8/go-ipv8/nat/stun"
	"github.com/ipv8/go-ipv8/transport"
	"github.com/ipv8/go-ipv8/transport/udp"
)

// The relay of the lab's tests: a public host beside the STUN servers.
var relayAddr = netip.AddrPortFrom(natlab.Spare1, 4000)

// The STUN servers Observe asks, for new mappings: coturn's four sockets
// and two of a host's at a third IP (every host answers STUN), so that a
// host still sees two IPs when one does not answer.
var stunServers = []netip.AddrPort{
	netip.AddrPortFrom(natlab.STUN1, 3478), netip.AddrPortFrom(natlab.STUN1, 3479),
	netip.AddrPortFrom(natlab.STUN2, 3478), netip.AddrPortFrom(natlab.STUN2, 3479),
	netip.AddrPortFrom(natlab.Spare2, 3478), netip.AddrPortFrom(natlab.Spare2, 3479),
}

// labLimits let the lab's many short-lived clients reserve from few IPs.
var labLimits = relay.Limits{MaxReservations: 1 << 20, MaxReservationsPerIP: 1 << 20, MaxCircuitsPerIP: 1 << 10}

// lab is a natlab lab with a relay and what each client's NAT filters.
type lab struct {
	*natlab.Lab
	relay     *node
	filtering map[string]nat.Behavior
}

// newLab builds the lab (or skips), starts the relay in the server
// namespace and runs NAT detection (coturn) once in every client, so
// that each knows its filtering as a host would.
func newLab(t *testing.T, nats []natlab.NAT) *lab {
	t.Helper()
	l := &lab{Lab: natlab.New(t, natlab.Config{NATs: nats}), filtering: map[string]nat.Behavior{}}
	l.relay = l.node(t, l.ServerNS(), relayAddr, nodeConfig{name: "relay", serve: true, limits: labLimits})
	for _, a := range stunServers[4:] {
		p, err := l.port(l.ServerNS(), a)
		if err != nil {
			t.Fatal(err)
		}
		e := stun.Attach(p, stun.EndpointConfig{AnswerRate: 100000})
		t.Cleanup(func() { e.Close(); p.Close() })
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range nats {
		wg.Go(func() {
			p, err := l.port(l.ClientNS(n.Name), netip.AddrPort{})
			if err != nil {
				t.Errorf("%s: %v", n.Name, err)
				return
			}
			defer p.Close()
			e := stun.Attach(p, stun.EndpointConfig{})
			defer e.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			rep, err := e.Detect(ctx, stun.DetectConfig{Servers: []netip.AddrPort{natlab.CoturnPrimary}, NoHairpin: true,
				Timing: stun.Timing{RTO: 100 * time.Millisecond, Timeout: 700 * time.Millisecond}})
			if err != nil {
				t.Errorf("%s: detection: %v", n.Name, err)
				return
			}
			if _, f := natlab.Expected(n.Kind); rep.Filtering != f {
				t.Errorf("%s (%s): detected filtering %s, built %s", n.Name, n.Kind, rep.Filtering, f)
			}
			mu.Lock()
			l.filtering[n.Name] = rep.Filtering
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return l
}

// port opens the host's port in namespace ns (any address: port 0).
func (l *lab) port(ns string, addr netip.AddrPort) (*udp.Port, error) {
	if !addr.IsValid() {
		addr = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	}
	var p *udp.Port
	err := l.In(ns, func() (err error) {
		p, err = udp.Listen(udp.Config{Addr: addr, DisableSteering: true, ReadBuffer: 1 << 20, WriteBuffer: 1 << 20})
		return err
	})
	return p, err
}

// node starts a node whose port lives in namespace ns.
func (l *lab) node(t testing.TB, ns string, addr netip.AddrPort, cfg nodeConfig) *node {
	t.Helper()
	p, err := l.port(ns, addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.port, cfg.closePort = p, p.Close
	if cfg.listenAux == nil {
		cfg.listenAux = l.auxSockets(ns)
	}
	return newNode(t, cfg)
}

// auxSockets opens the extra sockets of a birthday punch in namespace ns.
func (l *lab) auxSockets(ns string) func(n int) ([]transport.PacketConn, error) {
	return func(n int) (out []transport.PacketConn, err error) {
		err = l.In(ns, func() (err error) {
			out, err = punch.ListenUDP4(n)
			return err
		})
		return out, err
	}
}

// client starts a node in the named client with the lab's STUN servers
// and its detected filtering.
func (l *lab) client(t testing.TB, name string, cfg nodeConfig) *node {
	cfg.name = name
	cfg.stunServers = stunServers
	cfg.filtering = l.filtering[name]
	return l.node(t, l.ClientNS(name), netip.AddrPort{}, cfg)
}

// The matrix's kinds of NAT.
var matrixKinds = []struct {
	short string
	kind  natlab.Kind
}{
	{"open", natlab.Open}, {"fc", natlab.FullCone}, {"arc", natlab.AddrRestricted}, {"prc", natlab.PortRestricted},
	{"seq", natlab.Sequential}, {"adm", natlab.AddrDependent}, {"sym", natlab.Symmetric},
}

// matrixPair is a pair of kinds (a initiates) and the two clients that
// stand for it: every pair has routers of its own, so that each pair's
// routers can be reset between tries.
type matrixPair struct {
	a, b   int
	ca, cb string
}

func matrixPairs() ([]matrixPair, []natlab.NAT) {
	var pairs []matrixPair
	var nats []natlab.NAT
	for i := range matrixKinds {
		for j := i; j < len(matrixKinds); j++ {
			p := matrixPair{a: i, b: j, ca: fmt.Sprintf("m%da", len(pairs)), cb: fmt.Sprintf("m%db", len(pairs))}
			nats = append(nats, natlab.NAT{Name: p.ca, Kind: matrixKinds[i].kind}, natlab.NAT{Name: p.cb, Kind: matrixKinds[j].kind})
			pairs = append(pairs, p)
		}
	}
	return pairs, nats
}

// tryResult is one attempt of one pair.
type tryResult struct {
	strategy  punch.Strategy
	forced    bool // Choose said None; a birthday punch was forced to measure it
	punched   bool
	elapsed   time.Duration
	probes    int
	connected string // "direct", "relay" or "" (failed)
	err       error
}

// tryPair runs one attempt between fresh ports in clients a and b: a
// circuit through the relay, a punch coordinated over it (a birthday punch
// forced where Choose gives up), then a Noise session with a datagram
// each way over the punched path, or over the relay when the punch failed.
func (l *lab) tryPair(t *testing.T, a, b string, budget punch.Budget) tryResult {
	var res tryResult
	na := l.client(t, a, nodeConfig{noise: true, budget: budget})
	nb := l.client(t, b, nodeConfig{noise: true, budget: budget})
	defer na.close()
	defer nb.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ca, _, err := circuitTo(ctx, relayAddr, na, nb)
	if err != nil {
		res.err = fmt.Errorf("circuit: %w", err)
		return res
	}
	var opts []punch.Option
	// The traits are the ones Observe will see (the same STUN servers,
	// fresh ports): judge whether Choose gives up on this pair, and if so
	// force the birthday punch to measure it.
	ra, err := na.punch.Initiate(ctx, ca, opts...)
	if err == nil && ra.Strategy == punch.None {
		rb, _ := nb.punch.Accept(ctx)
		_ = rb
		res.forced = true
		// The plan Choose makes for a birthday pair, with the budget's
		// probes and sockets, the responder as the hard side.
		plan := punch.Choose(punch.Traits{Mapping: nat.EndpointIndependent, Filtering: nat.AddressAndPortDependent},
			punch.Traits{Mapping: nat.AddressAndPortDependent, Alloc: punch.AllocRandom}, budget)
		ra, err = na.punch.Initiate(ctx, ca, punch.WithPlan(plan))
	}
	if err != nil {
		res.err = fmt.Errorf("initiate: %w", err)
		return res
	}
	rb, err := nb.punch.Accept(ctx)
	if err != nil {
		res.err = fmt.Errorf("responder: %w", err)
		return res
	}
	res.strategy, res.probes = ra.Strategy, ra.Probes+rb.Probes
	if (ra.Err != nil || rb.Err != nil) && !res.forced {
		t.Logf("%s-%s: %s failed: %v / %v; %s %+v, %s %+v", a, b, ra.Strategy, ra.Err, rb.Err, a, ra.Self, b, ra.Peer)
	}
	if res.forced {
		res.strategy = punch.None
	}
	if ra.Err == nil && rb.Err == nil {
		res.punched, res.elapsed = true, ra.Elapsed
		nb.sessionPath(rb.Path)
		if err := exchange(ctx, na, nb, na.sessionPath(ra.Path)); err != nil {
			res.err = fmt.Errorf("session over the punched path: %w", err)
		} else {
			res.connected = "direct"
		}
		return res
	}
	if err := exchange(ctx, na, nb, ca); err != nil {
		res.err = fmt.Errorf("session over the relay: %w", err)
		return res
	}
	res.connected = "relay"
	return res
}

// envInt reads a positive integer from the environment.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestConnectivityMatrixInLab punches every pair of NAT kinds
// IPV8_NATLAB_TRIES times (default 20) — the plan Choose picks, or a
// birthday punch where it picks none — and checks that every pair is
// connected (directly or through the relay) on every try, that the pairs
// the NATs allow a direct path for get one every time (both sides
// endpoint-independent, or an endpoint-independent side whose filter lets
// the other's new port in), and that the prediction and birthday pairs
// succeed often. It writes the matrix to the file named by
// IPV8_NATLAB_MATRIX (and logs it).
func TestConnectivityMatrixInLab(t *testing.T) {
	tries := envInt("IPV8_NATLAB_TRIES", 20)
	pairs, nats := matrixPairs()
	l := newLab(t, nats)
	budget := punch.Budget{Duration: 1500 * time.Millisecond}
	type pair struct{ a, b int }
	results := make([][]tryResult, len(pairs))
	_, err := exec.LookPath("conntrack")
	canFlush := err == nil
	if !canFlush {
		t.Log("conntrack(8) missing: the routers keep their state between tries (apt-get install conntrack)")
	}
	sem := make(chan struct{}, envInt("IPV8_NATLAB_PARALLEL", 7))
	start := time.Now()
	t.Run("pairs", func(t *testing.T) {
		for pi, p := range pairs {
			t.Run(matrixKinds[p.a].short+"-"+matrixKinds[p.b].short, func(t *testing.T) {
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				for range tries {
					results[pi] = append(results[pi], l.tryPair(t, p.ca, p.cb, budget))
					// The next try starts from NATs without state.
					if canFlush {
						for _, c := range []string{p.ca, p.cb} {
							if err := l.FlushConntrack(c); err != nil {
								t.Fatal(err)
							}
						}
					}
				}
			})
		}
	})
	t.Logf("%d pairs × %d tries in %s", len(pairs), tries, time.Since(start).Round(time.Second))

	var b strings.Builder
	fmt.Fprintf(&b, "| initiator \\ responder | %s |\n|---|", strings.Join(shorts(), " | "))
	for range matrixKinds {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	cell := map[pair]string{}
	var detail strings.Builder
	detail.WriteString("| pair | plan | direct | median time to direct | median probes (both sides) | connected (direct + relay) |\n|---|---|---|---|---|---|\n")
	for pi, mp := range pairs {
		p := pair{mp.a, mp.b}
		rs := results[pi]
		if len(rs) == 0 {
			continue // not run (-run picked other pairs)
		}
		var punched, connected, direct, relayed int
		var times []time.Duration
		var probes []int
		strategy := rs[0].strategy
		for _, r := range rs {
			if r.punched {
				punched++
				times = append(times, r.elapsed)
			}
			probes = append(probes, r.probes)
			switch r.connected {
			case "direct":
				direct++
				connected++
			case "relay":
				relayed++
				connected++
			}
			if r.err != nil {
				t.Errorf("%s-%s: %v", matrixKinds[p.a].short, matrixKinds[p.b].short, r.err)
			}
			if r.strategy != strategy {
				t.Errorf("%s-%s: the plan changed between tries (%s, %s)", matrixKinds[p.a].short, matrixKinds[p.b].short, strategy, r.strategy)
			}
		}
		name := matrixKinds[p.a].short + " – " + matrixKinds[p.b].short
		plan := strategy.String()
		if strategy == punch.None {
			plan = "relay (birthday forced)"
		}
		med := "–"
		if len(times) > 0 {
			slices.Sort(times)
			med = fmt.Sprintf("%.2f ms", float64(times[len(times)/2])/1e6)
		}
		sort.Ints(probes)
		fmt.Fprintf(&detail, "| %s | %s | %d/%d | %s | %d | %d/%d (%d + %d) |\n", name, plan, punched, len(rs), med, probes[len(probes)/2], connected, len(rs), direct, relayed)
		letter := map[punch.Strategy]string{punch.Direct: "D", punch.Predict: "P", punch.Birthday: "B", punch.None: "R"}[strategy]
		c := fmt.Sprintf("%s %d/%d", letter, punched, len(rs))
		cell[p], cell[pair{p.b, p.a}] = c, c

		// What the NATs allow must happen every time; the rest often.
		if connected != len(rs) {
			t.Errorf("%s: connected %d of %d tries", name, connected, len(rs))
		}
		switch strategy {
		case punch.Direct:
			if punched != len(rs) {
				t.Errorf("%s: direct punch %d of %d", name, punched, len(rs))
			}
		case punch.Predict, punch.Birthday:
			if punched*10 < len(rs)*8 {
				t.Errorf("%s: %s punch only %d of %d", name, strategy, punched, len(rs))
			}
		}
		if ea, eb := easy(matrixKinds[p.a].kind), easy(matrixKinds[p.b].kind); (ea || eb) && strategy == punch.None {
			t.Errorf("%s: an endpoint-independent side, but no punch planned", name)
		}
	}
	for i, k := range matrixKinds {
		fmt.Fprintf(&b, "| **%s** |", k.short)
		for j := range matrixKinds {
			fmt.Fprintf(&b, " %s |", cell[pair{i, j}])
		}
		b.WriteString("\n")
	}
	out := b.String() + "\n" + detail.String()
	t.Logf("connectivity matrix (%d tries per pair):\n%s", tries, out)
	if f := os.Getenv("IPV8_NATLAB_MATRIX"); f != "" {
		if err := os.WriteFile(f, []byte(out), 0o644); err != nil {
			t.Error(err)
		}
	}
}

func shorts() []string {
	var s []string
	for _, k := range matrixKinds {
		s = append(s, k.short)
	}
	return s
}

// easy: the kind maps endpoint-independently.
func easy(k natlab.Kind) bool {
	m, _ := natlab.Expected(k)
	return m == nat.EndpointIndependent
}
