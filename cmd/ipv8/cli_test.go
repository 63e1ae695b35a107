package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildCLI builds the ipv8 binary once per test run.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ipv8")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startNode runs `ipv8 node` and returns its first /p2p/ address.
func startNode(t *testing.T, bin string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "node", "--listen", "/ip4/127.0.0.1/udp/0", "--data", t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if strings.HasPrefix(line, "/ip4/127.0.0.1/") && strings.Contains(line, "/p2p/") {
				select {
				case addrc <- line:
				default:
				}
			}
		}
	}()
	select {
	case a := <-addrc:
		return a
	case <-time.After(30 * time.Second):
		t.Fatal("ipv8 node printed no address")
		return ""
	}
}

func run(t *testing.T, bin string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func TestNodePingPerfBetweenProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and runs processes")
	}
	bin := buildCLI(t)
	addr := startNode(t, bin)

	out, errOut, err := run(t, bin, "ping", "-c", "3", "-i", "100ms", addr)
	if err != nil {
		t.Fatalf("ping: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out, "3 sent, 3 received, 0% loss") || strings.Count(out, "seq=") != 3 {
		t.Fatalf("ping output:\n%s", out)
	}

	out, errOut, err = run(t, bin, "perf", "--upload", "4MiB", "--download", "4MiB", addr)
	if err != nil {
		t.Fatalf("perf: %v\n%s%s", err, out, errOut)
	}
	for _, want := range []string{"connected to", "upload:   4.00 MiB", "download: 4.00 MiB", "MB/s"} {
		if !strings.Contains(out, want) {
			t.Fatalf("perf output lacks %q:\n%s", want, out)
		}
	}
}

func TestCLIErrorsAreOneLine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	bin := buildCLI(t)
	for _, args := range [][]string{
		{"ping", "/ip4/127.0.0.1/udp/1/quic-v1"},           // no /p2p/
		{"ping", "not-an-address"},                         // malformed
		{"perf", "--upload", "lots", "/ip4/1.2.3.4/udp/1"}, // bad size
		{"node", "--listen", "/ip4/1.2.3.4/tcp/1"},         // not UDP
		{"nosuchcommand"},
	} {
		_, errOut, err := run(t, bin, args...)
		if err == nil {
			t.Errorf("%v: exit status 0", args)
			continue
		}
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "ipv8") {
			t.Errorf("%v: stderr is not one 'ipv8…' line:\n%s", args, errOut)
		}
	}
}
