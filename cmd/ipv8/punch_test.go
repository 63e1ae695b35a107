package main

import (
	"bytes"
	"context"
	"regexp"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer for several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) find(re *regexp.Regexp) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return re.FindStringSubmatch(s.b.String())
}

func waitFind(t *testing.T, out *syncBuffer, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := out.find(re); m != nil {
			return m
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %q in the output:\n%s", re, out.b.String())
	return nil
}

// ipv8 relay, ipv8 punch --wait and ipv8 punch --peer on loopback: the
// peers meet through the relay and punch a direct path (trivially here:
// there is no NAT), then ping over it.
func TestRelayAndPunchCommandsOnLoopback(t *testing.T) {
	out := &syncBuffer{}
	old := punchOut
	punchOut = out
	t.Cleanup(func() { punchOut = old })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, 3)
	go func() { errs <- runRelay(ctx, []string{"--listen", "127.0.0.1:0"}) }()
	relayAt := waitFind(t, out, regexp.MustCompile(`relay: \S+ listening on (\S+)`))[1]
	go func() { errs <- runPunch(ctx, []string{"--relay", relayAt, "--wait"}) }()
	id := waitFind(t, out, regexp.MustCompile(`punch: (\S+) reserved at`))[1]
	if err := runPunch(ctx, []string{"--relay", relayAt, "--peer", id, "--timeout", "20s"}); err != nil {
		t.Fatal(err)
	}
	waitFind(t, out, regexp.MustCompile(`punch: direct path to 127\.0\.0\.1:\d+ in`))
	waitFind(t, out, regexp.MustCompile(`punch: direct path RTT \d`))
	if err := <-errs; err != nil { // the waiter, after its one punch
		t.Fatal(err)
	}
	cancel()
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	waitFind(t, out, regexp.MustCompile(`relay: 1 circuits opened`))
}
