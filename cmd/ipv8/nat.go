package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ipv8/go-ipv8/nat"
	"github.com/ipv8/go-ipv8/nat/lifetime"
	"github.com/ipv8/go-ipv8/nat/portmap"
	"github.com/ipv8/go-ipv8/nat/stun"
	"github.com/ipv8/go-ipv8/transport/udp"
)

func init() {
	register(command{name: "nat", summary: "check the NAT: public address, RFC 5780 mapping/filtering, hairpinning, mapping lifetime", run: runNAT})
}

// defaultSTUNServers are asked when --stun is not given. They do not
// support RFC 5780, so with them the filtering behaviour stays unknown and
// the mapping is judged by comparing what the two see; pass an RFC 5780
// server (such as `ipv8 stun-server` on a host with two addresses) for the
// full test.
var defaultSTUNServers = []string{"stun.l.google.com:19302", "stun.cloudflare.com:3478"}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x != "" {
			*s = append(*s, x)
		}
	}
	return nil
}

// natJSON is the --json output: one object.
type natJSON struct {
	Mapping         nat.Behavior        `json:"mapping"`
	Filtering       nat.Behavior        `json:"filtering"`
	MappingReason   string              `json:"mapping_reason,omitempty"`
	FilteringReason string              `json:"filtering_reason,omitempty"`
	PublicAddr      string              `json:"public_addr,omitempty"`
	PublicAddrs     []string            `json:"public_addrs,omitempty"`
	LocalAddr       string              `json:"local_addr"`
	NoNAT           bool                `json:"no_nat"`
	Classic         string              `json:"rfc3489_type"`
	Hairpinning     nat.Tristate        `json:"hairpinning"`
	Lifetime        *float64            `json:"lifetime_seconds,omitempty"`
	LifetimeAlive   *float64            `json:"lifetime_alive_seconds,omitempty"`
	LifetimeGone    *float64            `json:"lifetime_gone_seconds,omitempty"`
	LifetimeError   string              `json:"lifetime_error,omitempty"`
	Keepalive       float64             `json:"keepalive_seconds"`
	PortMapping     []nat.PortMapStatus `json:"port_mapping"`
	Connectivity    string              `json:"connectivity"`
	Servers         []nat.ServerResult  `json:"servers"`
}

func runNAT(ctx context.Context, args []string) error {
	fs := newFlagSet("nat", "[--stun HOST:PORT]... [--json] [--lifetime] [--port N] [--no-portmap]")
	var servers stringList
	fs.Var(&servers, "stun", "STUN server HOST:PORT (repeatable or comma-separated; the first RFC 5780 one runs the behaviour tests)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	measure := fs.Bool("lifetime", false, "also measure the mapping lifetime (takes about twice the NAT's UDP timeout)")
	lifeMax := fs.Duration("lifetime-max", 300*time.Second, "longest idle time the lifetime search probes")
	port := fs.Int("port", 0, "local UDP port for the tests (0: a fresh one)")
	timeout := fs.Duration("timeout", stun.DefaultTiming.Timeout, "how long to wait for each STUN answer")
	noHairpin := fs.Bool("no-hairpin", false, "skip the hairpinning test")
	noPortmap := fs.Bool("no-portmap", false, "skip asking the gateway for NAT-PMP and UPnP IGD")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if len(servers) == 0 {
		servers = defaultSTUNServers
	}
	addrs, err := resolveServers(ctx, servers)
	if err != nil {
		return err
	}
	if *port < 0 || *port > 65535 {
		return fmt.Errorf("--port %d out of range", *port)
	}

	p, err := udp.Listen(udp.Config{Addr: netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(*port))})
	if err != nil {
		return err
	}
	defer p.Close()
	ep := stun.Attach(p, stun.EndpointConfig{})
	defer ep.Close()
	timing := stun.Timing{RTO: min(stun.DefaultTiming.RTO, *timeout/4), Timeout: *timeout}
	var pm []nat.PortMapStatus
	pmDone := make(chan struct{})
	go func() {
		defer close(pmDone)
		if !*noPortmap {
			pm = portmap.Probe(ctx, portmap.Config{})
		}
	}()
	rep, err := ep.Detect(ctx, stun.DetectConfig{Servers: addrs, Local: localAddrs(), Timing: timing, NoHairpin: *noHairpin})
	<-pmDone
	if err != nil {
		return err
	}
	rep.PortMapping = pm

	var life *lifetime.Result
	var lifeErr error
	if *measure {
		srv := lifetimeServer(rep)
		if !*asJSON {
			fmt.Fprintf(os.Stderr, "measuring the mapping lifetime against %s (up to %s per round)...\n", srv, *lifeMax)
		}
		pr := &lifetime.STUNProber{Server: srv}
		r, err := lifetime.Measure(ctx, pr, lifetime.Config{Max: *lifeMax})
		pr.Close()
		if err != nil {
			lifeErr = err
		} else {
			life = &r
			rep.Lifetime, rep.LifetimeLow, rep.LifetimeHigh = r.Estimate(), r.Alive, r.Dead
		}
	}
	if *asJSON {
		return printNATJSON(rep, life, lifeErr)
	}
	printNATText(rep, life, lifeErr, *measure)
	return nil
}

// lifetimeServer picks the server for the lifetime probes: the RFC 5780
// one (RESPONSE-PORT is RFC 5780 too), else the first that answered.
func lifetimeServer(rep nat.Report) netip.AddrPort {
	for _, s := range rep.Servers {
		if s.Other.IsValid() {
			return s.Server
		}
	}
	for _, s := range rep.Servers {
		if s.Mapped.IsValid() {
			return s.Server
		}
	}
	return rep.Servers[0].Server
}

func resolveServers(ctx context.Context, names []string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, n := range names {
		host, ps, err := net.SplitHostPort(n)
		if err != nil {
			return nil, fmt.Errorf("--stun %q: want HOST:PORT", n)
		}
		port, err := strconv.ParseUint(ps, 10, 16)
		if err != nil || port == 0 {
			return nil, fmt.Errorf("--stun %q: bad port", n)
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
			continue
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
		if err != nil || len(ips) == 0 {
			return nil, fmt.Errorf("--stun %q: cannot resolve %s: %v", n, host, err)
		}
		out = append(out, netip.AddrPortFrom(ips[0].Unmap(), uint16(port)))
	}
	return out, nil
}

// localAddrs lists this machine's interface addresses (for "no NAT").
func localAddrs() []netip.Addr {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}

func secs(d time.Duration) *float64 {
	f := float64(d.Milliseconds()) / 1000
	return &f
}

// portMappingText says what the gateway offers for forwarding a port.
func portMappingText(st []nat.PortMapStatus) string {
	if len(st) == 0 {
		return "not checked"
	}
	var parts []string
	for _, s := range st {
		name := map[string]string{portmap.NATPMP: "NAT-PMP", portmap.UPnP: "UPnP IGD"}[s.Protocol]
		switch {
		case s.Err != "":
			parts = append(parts, name+": no")
		case s.Gateway.IsValid():
			parts = append(parts, fmt.Sprintf("%s: yes (gateway %s, external address %s)", name, s.Gateway, s.External))
		default:
			parts = append(parts, fmt.Sprintf("%s: yes (external address %s)", name, s.External))
		}
	}
	return strings.Join(parts, "; ")
}

func printNATJSON(rep nat.Report, life *lifetime.Result, lifeErr error) error {
	j := natJSON{
		Mapping: rep.Mapping, Filtering: rep.Filtering,
		MappingReason: rep.MappingReason, FilteringReason: rep.FilteringReason,
		LocalAddr: rep.Local.String(), NoNAT: rep.NoNAT,
		Classic:     nat.Classic(rep.NoNAT, rep.Mapping, rep.Filtering),
		Hairpinning: rep.Hairpinning, Keepalive: nat.KeepaliveInterval(rep.LifetimeLow).Seconds(),
		PortMapping: rep.PortMapping, Connectivity: nat.Connectivity(rep), Servers: rep.Servers,
	}
	for i, a := range rep.Public {
		if i == 0 {
			j.PublicAddr = a.String()
		}
		j.PublicAddrs = append(j.PublicAddrs, a.String())
	}
	if life != nil {
		j.Lifetime = secs(life.Estimate())
		if life.Alive > 0 {
			j.LifetimeAlive = secs(life.Alive)
		}
		if life.Dead > 0 {
			j.LifetimeGone = secs(life.Dead)
		}
	}
	if lifeErr != nil {
		j.LifetimeError = lifeErr.Error()
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(j)
}

func printNATText(rep nat.Report, life *lifetime.Result, lifeErr error, measured bool) {
	w := os.Stdout
	fmt.Fprintf(w, "NAT report (tests ran on local port %s):\n", rep.Local)
	pub := "none"
	if len(rep.Public) > 0 {
		parts := make([]string, len(rep.Public))
		for i, a := range rep.Public {
			parts[i] = a.String()
		}
		pub = strings.Join(parts, ", ")
	}
	fmt.Fprintf(w, "  * public address:  %s", pub)
	if rep.NoNAT {
		fmt.Fprint(w, " (this host's own address: no NAT)")
	} else if len(rep.Public) > 1 {
		fmt.Fprint(w, " (differs per server)")
	}
	fmt.Fprintln(w)
	for _, s := range rep.Servers {
		switch {
		case s.Err != "":
			fmt.Fprintf(w, "    - server %-22s %s\n", s.Server, s.Err)
		case s.Other.IsValid():
			fmt.Fprintf(w, "    - server %-22s rtt %-8s saw %s (RFC 5780, other address %s)\n", s.Server, s.RTT.Round(100*time.Microsecond), s.Mapped, s.Other)
		default:
			fmt.Fprintf(w, "    - server %-22s rtt %-8s saw %s (no RFC 5780)\n", s.Server, s.RTT.Round(100*time.Microsecond), s.Mapped)
		}
	}
	line := func(label string, b nat.Behavior, suffix, reason string) {
		fmt.Fprintf(w, "  * %-16s %s", label+":", b)
		if b != nat.Unknown {
			fmt.Fprintf(w, " (%s%s)", b.Short(), suffix)
		}
		if reason != "" {
			fmt.Fprintf(w, ": %s", reason)
		}
		fmt.Fprintln(w)
	}
	line("mapping", rep.Mapping, "M", rep.MappingReason)
	line("filtering", rep.Filtering, "F", rep.FilteringReason)
	fmt.Fprintf(w, "  * NAT type:        %s (RFC 3489 name)\n", nat.Classic(rep.NoNAT, rep.Mapping, rep.Filtering))
	fmt.Fprintf(w, "  * hairpinning:     %s\n", rep.Hairpinning)
	switch {
	case life != nil:
		fmt.Fprintf(w, "  * mapping lifetime: %s, %d mappings in %d rounds\n", life, life.Mappings, life.Rounds)
	case lifeErr != nil:
		fmt.Fprintf(w, "  * mapping lifetime: not measured: %v\n", lifeErr)
	case !measured:
		fmt.Fprintln(w, "  * mapping lifetime: not measured (--lifetime measures it; it takes about twice the NAT's UDP timeout)")
	}
	ka := nat.KeepaliveInterval(rep.LifetimeLow)
	how := "half the lifetime seen"
	if rep.LifetimeLow == 0 {
		how = "default while the lifetime is unknown"
	}
	fmt.Fprintf(w, "  * keepalive:       %s (%s)\n", ka, how)
	fmt.Fprintf(w, "  * port mapping:    %s\n", portMappingText(rep.PortMapping))
	fmt.Fprintf(w, "  * connectivity:    %s\n", nat.Connectivity(rep))
}
