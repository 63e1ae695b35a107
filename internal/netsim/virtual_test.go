package netsim

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestVirtualTimeRunsTimersAndDeliveriesInOrder(t *testing.T) {
	n := virtualNet(t, 1)
	a, b := pair(t, n, Link{Latency: 5 * time.Millisecond}, Link{Latency: 10 * time.Millisecond})
	clk := n.Clock()
	var log []string
	note := func(what string) {
		log = append(log, fmt.Sprintf("%v %s", clk.Now().Sub(VirtualEpoch), what))
	}
	b.SetHandler(func(pkt []byte, from netip.AddrPort) { note("deliver " + string(pkt)) })
	clk.AfterFunc(30*time.Millisecond, func() { note("timer 30") })
	clk.AfterFunc(10*time.Millisecond, func() {
		note("timer 10")
		clk.AfterFunc(0, func() { note("timer 10+0") })
		mustWrite(t, a, []byte("p2"), b.LocalAddrPort()) // arrives at 25ms
	})
	clk.AfterFunc(15*time.Millisecond, func() { note("timer 15") })
	mustWrite(t, a, []byte("p1"), b.LocalAddrPort()) // arrives at 15ms, after timer 15 (scheduled first)
	clk.AfterFunc(20*time.Millisecond, func() { note("timer 20") })

	// Nothing moves without RunFor.
	time.Sleep(20 * time.Millisecond)
	if len(log) != 0 || clk.Now() != VirtualEpoch {
		t.Fatalf("virtual time advanced by itself: %v", log)
	}
	n.RunFor(22 * time.Millisecond)
	if clk.Now() != VirtualEpoch.Add(22*time.Millisecond) {
		t.Fatalf("Now after RunFor(22ms) = %v", clk.Now().Sub(VirtualEpoch))
	}
	n.RunUntil(VirtualEpoch.Add(time.Second))
	want := []string{
		"10ms timer 10",
		"10ms timer 10+0",
		"15ms timer 15",
		"15ms deliver p1",
		"20ms timer 20",
		"25ms deliver p2",
		"30ms timer 30",
	}
	if !slices.Equal(log, want) {
		t.Fatalf("ran\n%q\nwant\n%q", log, want)
	}
	if n.Pending() != 0 {
		t.Fatalf("%d events left", n.Pending())
	}
}

func TestVirtualTimerStopAndReset(t *testing.T) {
	n := virtualNet(t, 1)
	clk := n.Clock()
	var fired []time.Duration
	f := func() { fired = append(fired, clk.Now().Sub(VirtualEpoch)) }

	stopped := clk.AfterFunc(10*time.Millisecond, f)
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer reported false")
	}
	if stopped.Stop() {
		t.Fatal("second Stop reported true")
	}
	moved := clk.AfterFunc(10*time.Millisecond, f)
	if !moved.Reset(50 * time.Millisecond) {
		t.Fatal("Reset of a pending timer reported false")
	}
	n.RunFor(40 * time.Millisecond)
	if len(fired) != 0 {
		t.Fatalf("fired %v before the reset time", fired)
	}
	n.RunFor(20 * time.Millisecond)
	if !slices.Equal(fired, []time.Duration{50 * time.Millisecond}) {
		t.Fatalf("fired %v, want [50ms]", fired)
	}
	// Reset after firing reports false and schedules it again.
	if moved.Reset(5 * time.Millisecond) {
		t.Fatal("Reset of a fired timer reported true")
	}
	n.RunFor(time.Second)
	if !slices.Equal(fired, []time.Duration{50 * time.Millisecond, 65 * time.Millisecond}) {
		t.Fatalf("fired %v", fired)
	}
	if n.Pending() != 0 {
		t.Fatal("stopped timer left in the heap")
	}
}

func TestRunUntilThePastRunsNothing(t *testing.T) {
	n := virtualNet(t, 1)
	n.RunFor(time.Second)
	ran := false
	n.Clock().AfterFunc(0, func() { ran = true })
	n.RunUntil(VirtualEpoch)
	if ran || n.Clock().Now() != VirtualEpoch.Add(time.Second) {
		t.Fatalf("RunUntil(the past) ran a timer (%v) or moved time to %v", ran, n.Clock().Now())
	}
	n.RunFor(0) // runs what is due now
	if !ran {
		t.Fatal("timer due now did not run in RunFor(0)")
	}
}

func TestRunForPanicsOnRealTimeAndReentry(t *testing.T) {
	mustPanic := func(what string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Fatalf("%s did not panic", what)
			}
		}()
		f()
	}
	rn := realNet(t, 1)
	mustPanic("RunFor on a real-time network", func() { rn.RunFor(time.Second) })

	vn := virtualNet(t, 1)
	var inner any
	vn.Clock().AfterFunc(time.Millisecond, func() {
		defer func() { inner = recover() }()
		vn.RunFor(time.Second)
	})
	vn.RunFor(time.Second)
	if inner == nil {
		t.Fatal("RunFor from a callback did not panic")
	}
}

func TestRealTimeClockIsWallClock(t *testing.T) {
	n := realNet(t, 1)
	clk := n.Clock()
	if d := time.Since(clk.Now()); d < 0 || d > time.Second {
		t.Fatalf("real clock is %v off", d)
	}
	done := make(chan struct{})
	start := time.Now()
	clk.AfterFunc(10*time.Millisecond, func() { close(done) })
	select {
	case <-done:
		if time.Since(start) < 10*time.Millisecond {
			t.Fatal("fired early")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("real-time AfterFunc never fired")
	}
}

func TestVirtualReadsDoNotBlock(t *testing.T) {
	n := virtualNet(t, 1)
	a, b := pair(t, n, Link{Latency: time.Millisecond}, Link{})
	buf := make([]byte, 10)
	if _, _, err := b.ReadFrom(buf); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("read with nothing queued: %v, want ErrWouldBlock", err)
	}
	mustWrite(t, a, []byte("queued"), b.LocalAddrPort())
	n.RunFor(time.Second)
	k, from, err := b.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:k]) != "queued" || from != a.LocalAddrPort() {
		t.Fatalf("read %q from %v: %v", buf[:k], from, err)
	}
}

// A small community: 200 hosts behind 20 NATs, each pinging a peer's
// public address every second for a virtual minute, all on timers.
func TestVirtualSimulationIsDeterministic(t *testing.T) {
	run := func(seed uint64) Stats {
		n := virtualNet(t, seed)
		clk := n.Clock()
		srv := listen(t, n.NewHost(srv1IP, Link{Latency: 10 * time.Millisecond}), 7000)
		srv.SetHandler(func(pkt []byte, from netip.AddrPort) { srv.WriteToUDPAddrPort(pkt, from) })
		var conns []*Conn
		for i := range 20 {
			nat := n.NewNAT(netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}), NATConfig{Mapping: Behavior(i%3 + 1)},
				Link{Latency: 5 * time.Millisecond, Loss: 0.02, Jitter: 2 * time.Millisecond})
			for j := range 10 {
				conns = append(conns, listen(t, nat.NewHost(netip.AddrFrom4([4]byte{10, 0, 0, byte(j + 2)}), Link{}), 0))
			}
		}
		for _, c := range conns {
			c.SetHandler(func([]byte, netip.AddrPort) {})
			var tick func()
			tick = func() {
				mustWrite(t, c, []byte("ping"), srv.LocalAddrPort())
				clk.AfterFunc(time.Second, tick)
			}
			clk.AfterFunc(time.Duration(c.LocalAddrPort().Port())*time.Microsecond, tick)
		}
		n.RunFor(time.Minute)
		return n.Stats()
	}
	first, again := run(3), run(3)
	if first != again {
		t.Fatalf("same seed, different outcomes:\n%v\n%v", first, again)
	}
	if first.Sent < 200*60*2-400 || first.Dropped(DropLoss) == 0 || first.Delivered < first.Sent*9/10 {
		t.Fatalf("simulation did not run as expected: %v", first)
	}
}
