package natlab

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/nat"
)

func TestParseNATDiscoveryReadsVerdicts(t *testing.T) {
	open := `-= Mapping Behavior Discovery =-
========================================
No NAT! (Endpoint Independent Mapping)
========================================
NAT with Endpoint Independent Mapping!
-= Filtering Behavior Discovery =-
STUN receive timeout..
No NAT! (Endpoint Independent Mapping)
NAT with Endpoint Independent Filtering!
`
	d := ParseNATDiscovery(open)
	if !d.NoNAT || d.Mapping != nat.EndpointIndependent || d.Filtering != nat.EndpointIndependent {
		t.Errorf("open: %+v", d)
	}
	sym := "-= Mapping Behavior Discovery =-\nNAT with Address and Port Dependent Mapping!\n-= Filtering Behavior Discovery =-\nNAT with Address Dependent Filtering!\n"
	d = ParseNATDiscovery(sym)
	if d.NoNAT || d.Mapping != nat.AddressAndPortDependent || d.Filtering != nat.AddressDependent {
		t.Errorf("sym: %+v", d)
	}
	if d := ParseNATDiscovery("STUN receive timeout..\n"); d.Mapping != nat.Unknown || d.Filtering != nat.Unknown {
		t.Errorf("no verdict: %+v", d)
	}
}

func TestRouterRulesLoadInNftables(t *testing.T) {
	// nft -c checks a ruleset without applying it; it needs root too.
	if Missing(Config{NoCoturn: true}) != "" {
		t.Skip("natlab: skipped: " + Missing(Config{NoCoturn: true}))
	}
	for _, k := range []Kind{FullCone, AddrRestricted, PortRestricted, AddrDependent, Symmetric, Sequential} {
		cmd := exec.Command("nft", "-c", "-f", "-")
		cmd.Stdin = strings.NewReader(routerRules(k, STUN1, 30))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v: %s", k, err, out)
		}
	}
}

// The lab is what it claims: coturn's own classifier, run in each client,
// sees the behaviour each router was built for (the recipe's table), and
// the lab leaves no namespace behind.
func TestLabRoutersHaveTheirBehaviour(t *testing.T) {
	l := New(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for _, n := range l.NATs() {
		wg.Go(func() {
			d, err := l.NATDiscovery(ctx, n.Name, STUN1)
			if err != nil {
				t.Errorf("%s: %v\n%s", n.Name, err, d.Output)
				return
			}
			m, f := Expected(n.Kind)
			if d.Mapping != m || d.Filtering != f || d.NoNAT != (n.Kind == Open) {
				t.Errorf("%s (%s): turnutils_natdiscovery says %s/%s (no NAT %v), want %s/%s", n.Name, n.Kind, d.Mapping, d.Filtering, d.NoNAT, m, f)
			}
		})
	}
	wg.Wait()
	prefix := l.prefix
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), prefix) {
		t.Errorf("namespaces left after Close:\n%s", out)
	}
}

// A lab whose process died without cleaning up is removed by the next one.
func TestRemoveStaleDeletesNamespacesOfDeadProcesses(t *testing.T) {
	if why := Missing(Config{NoCoturn: true}); why != "" {
		t.Skip("natlab: skipped: " + why)
	}
	// A PID that is not running: a child that has exited.
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	stale := namePrefix + itoa(c.ProcessState.Pid()) + "x1-pub"
	if err := run("ip", "netns", "add", stale); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", stale).Run() })
	RemoveStale()
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), stale) {
		t.Fatalf("stale namespace %s survived RemoveStale", stale)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
