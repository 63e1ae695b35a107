package main

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/nat"
	"github.com/ipv8/go-ipv8/nat/stun"
)

// runCLI runs `ipv8 args…` as a child process (the re-executed test
// binary) and returns its stdout. Outside the lab's namespaces the tests
// pass --no-portmap: `ipv8 nat` would otherwise ask this machine's real
// gateway (NAT-PMP) and LAN (SSDP) about port mapping.
func runCLI(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(args)
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestCLIHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(spec))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), &cliError{err, stderr.String()}
	}
	return string(out), nil
}

type cliError struct {
	err    error
	stderr string
}

func (e *cliError) Error() string { return e.err.Error() + ": " + e.stderr }

// loopbackSTUN runs an RFC 5780 server on 127.0.0.1 and 127.0.0.2 (Linux
// routes all of 127/8 to lo) on two free ports.
func loopbackSTUN(t *testing.T) netip.AddrPort {
	t.Helper()
	for try := 0; try < 20; try++ {
		p := uint16(20000 + (time.Now().UnixNano()/1000+int64(try)*7919)%30000)
		cfg := stun.ServerConfig{Primary: netip.MustParseAddrPort("127.0.0.1:0"), Alternate: netip.MustParseAddrPort("127.0.0.2:0")}
		cfg.Primary = netip.AddrPortFrom(cfg.Primary.Addr(), p)
		cfg.Alternate = netip.AddrPortFrom(cfg.Alternate.Addr(), p+1)
		s, err := stun.Listen(cfg)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.Serve(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		return cfg.Primary
	}
	t.Skip("no free loopback ports for the STUN server")
	return netip.AddrPort{}
}

// On loopback there is no NAT: `ipv8 nat --json` must say so, with the
// keys and values the issue asks for.
func TestNATCommandJSONOnLoopback(t *testing.T) {
	srv := loopbackSTUN(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := runCLI(t, ctx, "nat", "--json", "--no-portmap", "--stun", srv.String())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	if m["mapping"] != "endpoint-independent" || m["filtering"] != "endpoint-independent" || m["no_nat"] != true {
		t.Errorf("loopback: %s", out)
	}
	pub, _ := m["public_addr"].(string)
	if ap, err := netip.ParseAddrPort(pub); err != nil || ap.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("public_addr %q", pub)
	}
	if _, ok := m["lifetime_seconds"]; ok {
		t.Error("lifetime_seconds present though not measured")
	}
}

// Against a server without CHANGE-REQUEST support the verdict is
// "unknown" with a reason, in both the text and the JSON report.
func TestNATCommandSaysUnknownWithoutRFC5780(t *testing.T) {
	cfg := stun.ServerConfig{Primary: netip.MustParseAddrPort("127.0.0.1:0")}
	var s *stun.Server
	var err error
	for p := uint16(23478); p < 23578 && s == nil; p++ {
		cfg.Primary = netip.AddrPortFrom(cfg.Primary.Addr(), p)
		s, err = stun.Listen(cfg)
	}
	if s == nil {
		t.Skip("no free loopback port:", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	out, err := runCLI(t, ctx, "nat", "--json", "--no-portmap", "--stun", cfg.Primary.String())
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		Mapping, Filtering nat.Behavior
		Reason             string `json:"filtering_reason"`
	}
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		t.Fatal(err)
	}
	if o.Filtering != nat.Unknown || !strings.Contains(o.Reason, "RFC 5780") {
		t.Errorf("filtering %s (%q), want unknown with a reason", o.Filtering, o.Reason)
	}
	text, err := runCLI(t, ctx, "nat", "--no-portmap", "--stun", cfg.Primary.String(), "--no-hairpin")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "filtering:       unknown") || !strings.Contains(text, "public address:  127.0.0.1:") {
		t.Errorf("text report:\n%s", text)
	}
}
