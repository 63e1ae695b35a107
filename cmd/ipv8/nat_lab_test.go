package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/nat"
	"github.com/ipv8/go-ipv8/nat/natlab"
)

// helperEnv carries a CLI command line (JSON list) to a re-executed test
// binary: the lab runs the real `ipv8 …` code inside its namespaces
// without building the binary.
const helperEnv = "IPV8_CLI_HELPER"

// TestCLIHelperProcess is not a test: re-executed with helperEnv set, it
// runs that command and exits with its status.
func TestCLIHelperProcess(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		t.Skip("helper process for the lab tests; runs only when re-executed by them")
	}
	var args []string
	if err := json.Unmarshal([]byte(spec), &args); err != nil || len(args) == 0 {
		fmt.Fprintln(os.Stderr, "bad", helperEnv, spec)
		os.Exit(2)
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintln(os.Stderr, "no command", args[0])
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.run(ctx, args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "ipv8 %s: %v\n", args[0], err)
		os.Exit(1)
	}
	os.Exit(0)
}

// ipv8In returns a command running `ipv8 args…` in namespace ns.
func ipv8In(t *testing.T, ctx context.Context, l *natlab.Lab, ns string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(args)
	cmd := l.Command(ctx, ns, exe, "-test.run=^TestCLIHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(spec))
	return cmd
}

// ipv8STUN is where the lab runs `ipv8 stun-server`.
var (
	ipv8STUN      = netip.AddrPortFrom(natlab.Spare1, 3478)
	ipv8STUNOther = netip.AddrPortFrom(natlab.Spare2, 3479)
)

func startIPv8STUNServer(t *testing.T, l *natlab.Lab) {
	t.Helper()
	cmd := ipv8In(t, context.Background(), l, l.ServerNS(), "stun-server", "--listen", ipv8STUN.String(), "--alt", ipv8STUNOther.String())
	if err := l.StartCommand(cmd, "ipv8-stun-server.log"); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitUDP(l.ServerNS(), 20*time.Second, ipv8STUN, ipv8STUNOther); err != nil {
		t.Fatal(err)
	}
}

// natOut is the part of `ipv8 nat --json` the tests read.
type natOut struct {
	Mapping         nat.Behavior `json:"mapping"`
	Filtering       nat.Behavior `json:"filtering"`
	MappingReason   string       `json:"mapping_reason"`
	FilteringReason string       `json:"filtering_reason"`
	PublicAddr      string       `json:"public_addr"`
	NoNAT           bool         `json:"no_nat"`
	Classic         string       `json:"rfc3489_type"`
	Hairpinning     string       `json:"hairpinning"`
	Lifetime        *float64     `json:"lifetime_seconds"`
	LifetimeAlive   *float64     `json:"lifetime_alive_seconds"`
	LifetimeGone    *float64     `json:"lifetime_gone_seconds"`
	LifetimeError   string       `json:"lifetime_error"`
	Keepalive       float64      `json:"keepalive_seconds"`
}

func runNATJSON(t *testing.T, ctx context.Context, l *natlab.Lab, client string, args ...string) (natOut, error) {
	cmd := ipv8In(t, ctx, l, l.ClientNS(client), append([]string{"nat", "--json"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var o natOut
	if err != nil {
		return o, fmt.Errorf("ipv8 nat in %s: %v: %s", client, err, stderr.String())
	}
	if err := json.Unmarshal(out, &o); err != nil {
		return o, fmt.Errorf("ipv8 nat in %s: bad JSON %q: %v", client, out, err)
	}
	return o, nil
}

func short(b nat.Behavior, suffix string) string {
	if b == nat.Unknown {
		return "unknown"
	}
	return b.Short() + suffix
}

// For every NAT of the lab, `ipv8 nat` reaches the same mapping and
// filtering verdict as coturn's turnutils_natdiscovery -m -f, against
// coturn's STUN server and against `ipv8 stun-server`; and all four agree
// with the behaviour the router was built for.
func TestNATVerdictsMatchCoturnInLab(t *testing.T) {
	t.Parallel()
	l := natlab.New(t, natlab.Config{})
	startIPv8STUNServer(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	servers := []struct {
		name string
		addr netip.AddrPort
	}{{"coturn", natlab.CoturnPrimary}, {"ipv8 stun-server", ipv8STUN}}

	type cell struct {
		ref  natlab.Discovery
		ours natOut
	}
	results := map[string]map[string]*cell{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range l.NATs() {
		results[n.Name] = map[string]*cell{}
		for _, s := range servers {
			c := &cell{}
			results[n.Name][s.name] = c
			wg.Go(func() {
				d, err := l.NATDiscovery(ctx, n.Name, s.addr.Addr())
				if err != nil {
					t.Errorf("%s vs %s: %v\n%s", n.Name, s.name, err, d.Output)
				}
				o, err := runNATJSON(t, ctx, l, n.Name, "--stun", s.addr.String())
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				c.ref, c.ours = d, o
				mu.Unlock()
			})
		}
	}
	wg.Wait()

	var table strings.Builder
	fmt.Fprintln(&table, "| client | router built as | server | turnutils_natdiscovery -m -f | ipv8 nat | RFC 3489 name | hairpinning | public address |")
	fmt.Fprintln(&table, "|---|---|---|---|---|---|---|---|")
	for _, n := range l.NATs() {
		wantM, wantF := natlab.Expected(n.Kind)
		for _, s := range servers {
			c := results[n.Name][s.name]
			ref := fmt.Sprintf("%s / %s", short(c.ref.Mapping, "M"), short(c.ref.Filtering, "F"))
			ours := fmt.Sprintf("%s / %s", short(c.ours.Mapping, "M"), short(c.ours.Filtering, "F"))
			if c.ref.NoNAT {
				ref = "no NAT, " + ref
			}
			if c.ours.NoNAT {
				ours = "no NAT, " + ours
			}
			fmt.Fprintf(&table, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", n.Name, n.Kind, s.name, ref, ours, c.ours.Classic, c.ours.Hairpinning, c.ours.PublicAddr)
			if c.ours.Mapping != c.ref.Mapping || c.ours.Filtering != c.ref.Filtering || c.ours.NoNAT != c.ref.NoNAT {
				t.Errorf("%s against %s: ipv8 nat says %s, turnutils_natdiscovery %s (reasons: %q %q)", n.Name, s.name, ours, ref, c.ours.MappingReason, c.ours.FilteringReason)
			}
			if c.ours.Mapping != wantM || c.ours.Filtering != wantF {
				t.Errorf("%s against %s: ipv8 nat says %s, router built as %s/%s", n.Name, s.name, ours, short(wantM, "M"), short(wantF, "F"))
			}
			wantPub := l.RouterWAN(n.Name)
			if n.Kind == natlab.Open {
				wantPub = l.ClientIP(n.Name)
			}
			if ap, err := netip.ParseAddrPort(c.ours.PublicAddr); err != nil || ap.Addr() != wantPub {
				t.Errorf("%s: public address %q, want %s:…", n.Name, c.ours.PublicAddr, wantPub)
			}
		}
	}
	t.Logf("verdicts (lab run %s):\n%s", time.Now().UTC().Format(time.DateOnly), table.String())
	writeTable(t, "IPV8_NATLAB_VERDICTS", table.String())
}

// Mapping lifetime, measured by `ipv8 nat --lifetime` behind routers whose
// conntrack UDP timeout is 10 s and 30 s (the kernel's default), against
// coturn and against `ipv8 stun-server`, lands within 10 % of it.
func TestNATLifetimeInLab(t *testing.T) {
	t.Parallel()
	l := natlab.New(t, natlab.Config{NATs: []natlab.NAT{
		{Name: "tmo", Kind: natlab.PortRestricted, UDPTimeout: 10},
		{Name: "prc", Kind: natlab.PortRestricted},
		{Name: "sym", Kind: natlab.Symmetric},
	}})
	startIPv8STUNServer(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cases := []struct {
		client string
		want   float64
		server netip.AddrPort
		name   string
	}{
		{"tmo", 10, natlab.CoturnPrimary, "coturn"},
		{"tmo", 10, ipv8STUN, "ipv8 stun-server"},
		{"prc", 30, natlab.CoturnPrimary, "coturn"},
		{"sym", 30, ipv8STUN, "ipv8 stun-server"},
	}
	outs := make([]natOut, len(cases))
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range cases {
		wg.Go(func() {
			o, err := runNATJSON(t, ctx, l, c.client, "--stun", c.server.String(), "--no-hairpin", "--lifetime", "--lifetime-max", "120s")
			if err != nil {
				t.Error(err)
			}
			outs[i] = o
		})
	}
	wg.Wait()
	var table strings.Builder
	fmt.Fprintln(&table, "| client | router | conntrack UDP timeout | server | alive at | gone at | measured | error | keepalive |")
	fmt.Fprintln(&table, "|---|---|---|---|---|---|---|---|---|")
	for i, c := range cases {
		o := outs[i]
		f := func(p *float64) string {
			if p == nil {
				return "-"
			}
			return fmt.Sprintf("%.2f s", *p)
		}
		errPct := math.NaN()
		if o.Lifetime != nil {
			errPct = 100 * (*o.Lifetime - c.want) / c.want
		}
		kind := "port-restricted"
		if c.client == "sym" {
			kind = "symmetric"
		}
		fmt.Fprintf(&table, "| %s | %s | %.0f s | %s | %s | %s | %s | %+.1f %% | %.1f s |\n", c.client, kind, c.want, c.name, f(o.LifetimeAlive), f(o.LifetimeGone), f(o.Lifetime), errPct, o.Keepalive)
		if o.Lifetime == nil {
			t.Errorf("%s against %s: no lifetime (%s)", c.client, c.name, o.LifetimeError)
			continue
		}
		if math.Abs(errPct) > 10 {
			t.Errorf("%s against %s: lifetime %.2f s, want %.0f s ±10 %%", c.client, c.name, *o.Lifetime, c.want)
		}
		if o.Keepalive <= 0 || o.Keepalive >= c.want {
			t.Errorf("%s: keepalive %.1f s for a %.0f s mapping", c.client, o.Keepalive, c.want)
		}
	}
	t.Logf("lifetimes (lab run %s, all in parallel in %s):\n%s", time.Now().UTC().Format(time.DateOnly), time.Since(start).Round(time.Second), table.String())
	writeTable(t, "IPV8_NATLAB_LIFETIMES", table.String())
}

// writeTable writes a result table to the file named by env, when set
// (how docs/NAT.md gets its tables).
func writeTable(t *testing.T, env, table string) {
	if path := os.Getenv(env); path != "" {
		if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
}
