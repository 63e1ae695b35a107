// Package natlab builds a lab of real Linux NATs for tests: network
// namespaces joined by a bridge that plays the internet, a coturn STUN
// server with two public addresses, and clients behind router namespaces
// whose nftables rules give each RFC 4787 behaviour (full cone, restricted,
// port-restricted, address-dependent mapping, symmetric, and short UDP
// timeouts). Tests run commands (coturn's tools, their own binary) inside
// the namespaces and compare what they see.
//
// The facts (topology, rules, pitfalls) come from the validated recipe in
// shared/natlab. A lab needs root, iproute2 and nftables (and coturn for its
// STUN server); New skips the test, saying what is missing, when they are
// not there. Namespaces are named after the owning process, torn down by
// t.Cleanup even when the test fails or panics, and a later lab removes
// those of processes that died without cleaning up.
package natlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Kind is a NAT behaviour the lab can build.
type Kind string

const (
	Open           Kind = "open"           // no NAT: a public address on the bridge
	FullCone       Kind = "fullcone"       // EIM, EIF
	AddrRestricted Kind = "addrrestricted" // EIM, ADF
	PortRestricted Kind = "portrestricted" // EIM, APDF
	AddrDependent  Kind = "addrdependent"  // ADM, APDF
	Symmetric      Kind = "symmetric"      // APDM, APDF
	// Sequential is symmetric with sequential ports: every new flow gets
	// the next port (a counter shared by the router's flows), so a host
	// that learnt its last port can predict the next.
	Sequential Kind = "sequential" // APDM, APDF
)

// NAT is one client of the lab and the router in front of it.
type NAT struct {
	Name string // short, [a-z0-9]{1,8}: it names interfaces
	Kind Kind
	// UDPTimeout sets the router's conntrack UDP timeouts (both the
	// single-exchange and the stream one) in seconds; 0 keeps the kernel's
	// (30 s and 120 s).
	UDPTimeout int
}

// DefaultNATs is one client of each behaviour.
var DefaultNATs = []NAT{
	{"open", Open, 0}, {"fc", FullCone, 0}, {"arc", AddrRestricted, 0},
	{"prc", PortRestricted, 0}, {"adm", AddrDependent, 0}, {"sym", Symmetric, 0},
}

// Addresses on the lab's internet (RFC 5737 documentation space).
var (
	// Coturn listens on STUN1 and STUN2, ports 3478 (primary) and 3479.
	STUN1 = netip.MustParseAddr("198.51.100.1")
	STUN2 = netip.MustParseAddr("198.51.100.2")
	// Spare1 and Spare2 are two more addresses of the server namespace,
	// for a second STUN server (such as `ipv8 stun-server`).
	Spare1 = netip.MustParseAddr("198.51.100.3")
	Spare2 = netip.MustParseAddr("198.51.100.4")
	// OpenIP is the address of the client of kind Open.
	OpenIP = netip.MustParseAddr("198.51.100.10")
)

// Coturn's addresses.
var (
	CoturnPrimary = netip.AddrPortFrom(STUN1, 3478)
	CoturnOther   = netip.AddrPortFrom(STUN2, 3479)
)

// Config says what to build.
type Config struct {
	NATs []NAT // default DefaultNATs
	// NoCoturn leaves the STUN server out (then coturn is not required).
	NoCoturn bool
}

// Lab is a running lab.
type Lab struct {
	prefix string
	dir    string
	nats   map[string]natInfo
	order  []string

	mu     sync.Mutex
	nss    []string
	daemon []*exec.Cmd
	closed bool
	moves  int               // Move's counter (names its links and subnets)
	uplink map[string]string // client → its current uplink, after a Move
}

type natInfo struct {
	NAT
	index int
	ip    netip.Addr // the client's address
	wan   netip.Addr // the router's public address (zero for Open)
}

// Missing reports why a lab cannot be built here ("" when it can): not
// root, or a tool missing.
func Missing(cfg Config) string {
	if os.Geteuid() != 0 {
		return "natlab needs root (network namespaces, nftables)"
	}
	tools := []string{"ip", "nft", "ss", "sh"}
	if !cfg.NoCoturn {
		tools = append(tools, "turnserver", "turnutils_natdiscovery")
	}
	var miss []string
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			miss = append(miss, t)
		}
	}
	if len(miss) > 0 {
		return "natlab needs " + strings.Join(miss, ", ") + " (apt-get install iproute2 nftables coturn)"
	}
	return ""
}

var labSeq atomic.Int64

// namePrefix is the start of every namespace a lab makes: the owning
// process's PID lets a later lab tell stale namespaces from live ones.
const namePrefix = "i8l"

var staleRe = regexp.MustCompile(`^` + namePrefix + `(\d+)x\d+-`)

// New builds a lab for the test, or skips the test (saying why) when the
// machine cannot. The lab is torn down by t.Cleanup.
func New(t testing.TB, cfg Config) *Lab {
	t.Helper()
	if why := Missing(cfg); why != "" {
		t.Skip("natlab: skipped: " + why)
	}
	if len(cfg.NATs) == 0 {
		cfg.NATs = DefaultNATs
	}
	RemoveStale()
	l := &Lab{
		prefix: fmt.Sprintf("%s%dx%d-", namePrefix, os.Getpid(), labSeq.Add(1)),
		dir:    t.TempDir(),
		nats:   map[string]natInfo{},
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("natlab: teardown: %v", err)
		}
	})
	start := time.Now()
	if err := l.build(cfg); err != nil {
		t.Fatalf("natlab: build: %v", err)
	}
	t.Logf("natlab: %d namespaces up in %s (prefix %s)", len(l.nss), time.Since(start).Round(time.Millisecond), l.prefix)
	return l
}

// RemoveStale deletes the namespaces (and kills the processes in them) of
// labs whose process is gone.
func RemoveStale() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := staleRe.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() || processAlive(pid) {
			continue
		}
		deleteNS(f[0])
	}
}

func processAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil || errors.Is(syscall.Kill(pid, 0), syscall.EPERM)
}

// deleteNS kills what runs in ns, then deletes it.
func deleteNS(ns string) error {
	if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
		for _, p := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(p); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	var err error
	for range 20 { // a killed process may take a moment to leave
		if err = run("ip", "netns", "del", ns); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// sysctl sets a numeric sysctl of namespace ns (through /proc/sys, which
// shows the namespace of the process that opens it).
func sysctl(ns, key string, v int) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	return runIn(ns, "sh", "-c", "echo "+strconv.Itoa(v)+" > "+path)
}

// runIn runs a command in namespace ns.
func runIn(ns string, args ...string) error {
	return run("ip", append([]string{"netns", "exec", ns}, args...)...)
}

func (l *Lab) mkns(role string) (string, error) {
	ns := l.prefix + role
	if err := run("ip", "netns", "add", ns); err != nil {
		return "", err
	}
	l.mu.Lock()
	l.nss = append(l.nss, ns)
	l.mu.Unlock()
	return ns, runIn(ns, "ip", "link", "set", "lo", "up")
}

// PubNS, ServerNS, ClientNS and RouterNS name the lab's namespaces.
func (l *Lab) PubNS() string               { return l.prefix + "pub" }
func (l *Lab) ServerNS() string            { return l.prefix + "stun" }
func (l *Lab) ClientNS(name string) string { return l.prefix + "c-" + name }
func (l *Lab) RouterNS(name string) string { return l.prefix + "r-" + name }

// ClientIP is the address of the named client.
func (l *Lab) ClientIP(name string) netip.Addr { return l.nats[name].ip }

// RouterWAN is the public address of the named client's router (zero for
// an Open client).
func (l *Lab) RouterWAN(name string) netip.Addr { return l.nats[name].wan }

// NATs lists the lab's clients in the order configured.
func (l *Lab) NATs() []NAT {
	out := make([]NAT, len(l.order))
	for i, n := range l.order {
		out[i] = l.nats[n].NAT
	}
	return out
}

// Dir is a scratch directory for the lab's logs.
func (l *Lab) Dir() string { return l.dir }

var nameRe = regexp.MustCompile(`^[a-z0-9]{1,8}$`)

func (l *Lab) build(cfg Config) error {
	pub, err := l.mkns("pub")
	if err != nil {
		return err
	}
	steps := [][]string{
		{"ip", "link", "add", "br0", "type", "bridge"},
		{"ip", "link", "set", "br0", "up"},
	}
	for _, s := range steps {
		if err := runIn(pub, s...); err != nil {
			return err
		}
	}
	// br_netfilter, where built in, would pass bridged frames through
	// conntrack; the internet must not.
	for _, k := range []string{"iptables", "ip6tables", "arptables"} {
		_ = sysctl(pub, "net.bridge.bridge-nf-call-"+k, 0)
	}

	srv, err := l.mkns("stun")
	if err != nil {
		return err
	}
	if err := l.veth(srv, "eth0", pub, "stun"); err != nil {
		return err
	}
	for _, ip := range []netip.Addr{STUN1, STUN2, Spare1, Spare2} {
		if err := runIn(srv, "ip", "addr", "add", ip.String()+"/24", "dev", "eth0"); err != nil {
			return err
		}
	}
	if err := runIn(srv, "ip", "link", "set", "eth0", "up"); err != nil {
		return err
	}

	for i, n := range cfg.NATs {
		if !nameRe.MatchString(n.Name) {
			return fmt.Errorf("NAT name %q: want [a-z0-9]{1,8}", n.Name)
		}
		if _, dup := l.nats[n.Name]; dup {
			return fmt.Errorf("NAT name %q twice", n.Name)
		}
		if err := l.addClient(pub, i+1, n); err != nil {
			return fmt.Errorf("%s (%s): %w", n.Name, n.Kind, err)
		}
	}
	if !cfg.NoCoturn {
		return l.startCoturn(srv)
	}
	return nil
}

// veth links interface a in namespace nsA with b in nsB (b is enslaved to
// the bridge when nsB is the internet). Both ends are created inside the
// namespaces, so nothing is left in the root namespace.
func (l *Lab) veth(nsA, a, nsB, b string) error {
	if err := run("ip", "link", "add", a, "netns", nsA, "type", "veth", "peer", "name", b, "netns", nsB); err != nil {
		return err
	}
	if nsB == l.PubNS() {
		return runIn(nsB, "ip", "link", "set", b, "master", "br0", "up")
	}
	return runIn(nsB, "ip", "link", "set", b, "up")
}

func (l *Lab) addClient(pub string, i int, n NAT) error {
	c, err := l.mkns("c-" + n.Name)
	if err != nil {
		return err
	}
	info := natInfo{NAT: n, index: i}
	if n.Kind == Open {
		k := 0
		for _, o := range l.nats {
			if o.Kind == Open {
				k++
			}
		}
		if k >= 10 {
			return errors.New("at most 10 open clients")
		}
		info.ip = netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + k)})
		if err := l.veth(c, "eth0", pub, "c-"+n.Name); err != nil {
			return err
		}
		if err := runIn(c, "ip", "addr", "add", info.ip.String()+"/24", "dev", "eth0"); err != nil {
			return err
		}
		if err := runIn(c, "ip", "link", "set", "eth0", "up"); err != nil {
			return err
		}
		l.nats[n.Name] = info
		l.order = append(l.order, n.Name)
		return nil
	}
	if i > 200 {
		return errors.New("too many NATs")
	}
	r, err := l.mkns("r-" + n.Name)
	if err != nil {
		return err
	}
	info.wan = netip.AddrFrom4([4]byte{198, 51, 100, byte(20 + i)})
	info.ip = netip.AddrFrom4([4]byte{10, 0, byte(i), 2})
	lanIP := netip.AddrFrom4([4]byte{10, 0, byte(i), 1})
	if err := l.veth(r, "wan", pub, "r-"+n.Name); err != nil {
		return err
	}
	if err := l.veth(r, "lan", c, "eth0"); err != nil {
		return err
	}
	steps := [][]string{
		{r, "ip", "addr", "add", info.wan.String() + "/24", "dev", "wan"},
		{r, "ip", "addr", "add", lanIP.String() + "/24", "dev", "lan"},
		{r, "ip", "link", "set", "wan", "up"},
		{r, "ip", "link", "set", "lan", "up"},
		{c, "ip", "addr", "add", info.ip.String() + "/24", "dev", "eth0"},
		{c, "ip", "route", "add", "default", "via", lanIP.String()},
	}
	for _, s := range steps {
		if err := runIn(s[0], s[1:]...); err != nil {
			return err
		}
	}
	// A new namespace starts with forwarding off; rp_filter is set off
	// explicitly, as in the recipe.
	for k, v := range map[string]int{"net.ipv4.ip_forward": 1, "net.ipv4.conf.all.rp_filter": 0, "net.ipv4.conf.default.rp_filter": 0} {
		if err := sysctl(r, k, v); err != nil {
			return err
		}
	}
	timeout := n.UDPTimeout
	if timeout > 0 {
		// Both: one exchange gets udp_timeout; a later packet moves the
		// flow to udp_timeout_stream.
		for _, k := range []string{"net.netfilter.nf_conntrack_udp_timeout", "net.netfilter.nf_conntrack_udp_timeout_stream"} {
			if err := sysctl(r, k, timeout); err != nil {
				return err
			}
		}
	} else {
		timeout = 30
	}
	rules := routerRules(n.Kind, info.wan, timeout)
	cmd := exec.Command("ip", "netns", "exec", r, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft rules: %v: %s", err, out)
	}
	l.nats[n.Name] = info
	l.order = append(l.order, n.Name)
	return nil
}

// startCoturn runs turnserver as a plain RFC 5780 STUN server on STUN1 and
// STUN2, ports 3478 and 3479, and waits until its four sockets listen.
func (l *Lab) startCoturn(srv string) error {
	log := filepath.Join(l.dir, "turnserver.log")
	_, err := l.Start(srv, "turnserver", "-n", "--no-cli", "--stun-only", "--no-tls", "--no-dtls",
		"--listening-ip", STUN1.String(), "--listening-ip", STUN2.String(),
		"--listening-port", "3478", "--alt-listening-port", "3479",
		"--log-file", log, "--simple-log", "--no-stdout-log", "-r", "natlab")
	if err != nil {
		return err
	}
	return l.WaitUDP(srv, 5*time.Second, CoturnPrimary, netip.AddrPortFrom(STUN1, 3479), netip.AddrPortFrom(STUN2, 3478), CoturnOther)
}

// WaitUDP waits until UDP sockets listen on every address in ns.
func (l *Lab) WaitUDP(ns string, timeout time.Duration, addrs ...netip.AddrPort) error {
	deadline := time.Now().Add(timeout)
	for {
		out, _ := exec.Command("ip", "netns", "exec", ns, "ss", "-Hlun").Output()
		missing := ""
		for _, a := range addrs {
			if !bytes.Contains(out, []byte(" "+a.String()+" ")) {
				missing = a.String()
				break
			}
		}
		if missing == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on udp %s in %s after %s", missing, ns, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Command returns a command that runs prog in namespace ns. It dies with
// the test process (SIGKILL on parent death).
func (l *Lab) Command(ctx context.Context, ns, prog string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, prog}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Start runs a daemon in ns until the lab closes; its output goes to a
// log file in Dir.
func (l *Lab) Start(ns, prog string, args ...string) (*exec.Cmd, error) {
	cmd := l.Command(context.Background(), ns, prog, args...)
	return cmd, l.StartCommand(cmd, fmt.Sprintf("%s-%s.log", strings.TrimPrefix(ns, l.prefix), filepath.Base(prog)))
}

// StartCommand starts cmd (made by Command, so that it runs in a
// namespace) as a daemon that the lab kills when it closes; its output
// goes to the file logName in Dir.
func (l *Lab) StartCommand(cmd *exec.Cmd, logName string) error {
	f, err := os.Create(filepath.Join(l.dir, logName))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	go func() { cmd.Wait(); f.Close() }()
	l.mu.Lock()
	l.daemon = append(l.daemon, cmd)
	l.mu.Unlock()
	return nil
}

// Close kills the daemons and deletes every namespace of the lab.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	daemons, nss := l.daemon, l.nss
	l.mu.Unlock()
	for _, c := range daemons {
		if c.Process != nil {
			c.Process.Kill()
		}
	}
	var errs []error
	for i := len(nss) - 1; i >= 0; i-- {
		if err := deleteNS(nss[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
