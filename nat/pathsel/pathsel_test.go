package pathsel

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/transport"
)

const ms = time.Millisecond

func smp(rtt time.Duration) Sample { return Sample{MinRTT: rtt, SRTT: rtt, N: 5} }

func TestChooseKeepsTheBetterPathWithHysteresis(t *testing.T) {
	dead := Sample{MinRTT: 10 * ms, N: 5, Fails: 3}
	D, R := transport.PathDirect, transport.PathRelayed
	for _, tc := range []struct {
		name string
		cur  transport.PathKind
		d, r Sample
		want transport.PathKind
	}{
		{"direct faster: leave the relay", R, smp(10 * ms), smp(40 * ms), D},
		{"direct a bit slower (within tolerance): still direct", R, smp(43 * ms), smp(40 * ms), D},
		{"direct clearly slower: stay on the relay", R, smp(60 * ms), smp(40 * ms), R},
		{"on direct, slower but inside the hysteresis band: stay", D, smp(50 * ms), smp(40 * ms), D},
		{"on direct, slower beyond the band: go to the relay", D, smp(54 * ms), smp(40 * ms), R},
		{"on the relay, direct inside the band: do not come back yet", R, smp(50 * ms), smp(40 * ms), R},
		{"direct dead: relay", D, dead, smp(40 * ms), R},
		{"relay dead, direct up: direct", R, smp(90 * ms), Sample{N: 5, Fails: 3, MinRTT: 40 * ms}, D},
		{"no direct path measured: relay", R, Sample{}, smp(40 * ms), R},
		{"relay not measured yet: a punched path is taken", R, smp(10 * ms), Sample{}, D},
	} {
		if got := Choose(tc.cur, tc.d, tc.r, Config{}); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// fakePath is a path whose ping answers with a set RTT, or fails.
type fakePath struct {
	kind transport.PathKind
	mu   sync.Mutex
	rtt  time.Duration
	down bool
}

func (p *fakePath) WritePacket([]byte) error { return nil }
func (p *fakePath) Addr() netip.AddrPort     { return netip.MustParseAddrPort("192.0.2.1:1") }
func (p *fakePath) Kind() transport.PathKind { return p.kind }
func (p *fakePath) Overhead() int            { return 0 }
func (p *fakePath) set(rtt time.Duration, down bool) {
	p.mu.Lock()
	p.rtt, p.down = rtt, down
	p.mu.Unlock()
}
func (p *fakePath) ping(ctx context.Context) (time.Duration, error) {
	p.mu.Lock()
	rtt, down := p.rtt, p.down
	p.mu.Unlock()
	if down {
		<-ctx.Done()
		return 0, errors.New("no answer")
	}
	return rtt, nil
}

// The Selector moves the session to a punched path, back to the relay when
// the direct path dies, and to the direct path again when it recovers.
func TestSelectorFollowsThePaths(t *testing.T) {
	relay := &fakePath{kind: transport.PathRelayed, rtt: 30 * ms}
	direct := &fakePath{kind: transport.PathDirect, rtt: 5 * ms}
	var mu sync.Mutex
	var moves []transport.PathKind
	s, err := New(Config{
		SetPath: func(p Path) error {
			mu.Lock()
			moves = append(moves, p.Kind())
			mu.Unlock()
			return nil
		},
		Relay:    Candidate{Path: relay, Ping: relay.ping, RTT: 30 * ms},
		Interval: 20 * ms,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetDirect(Candidate{Path: direct, Ping: direct.ping, RTT: 5 * ms}); err != nil {
		t.Fatal(err)
	}
	if s.Current() != transport.PathDirect {
		t.Fatal("a faster punched path was not taken at once")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	waitFor := func(what string, k transport.PathKind) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for s.Current() != k {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * ms)
		}
	}
	direct.set(5*ms, true)
	waitFor("the relay after the direct path died", transport.PathRelayed)
	direct.set(5*ms, false)
	waitFor("the direct path again", transport.PathDirect)
	// A direct RTT a little above the relay's does not move it (noise).
	direct.set(33*ms, false)
	time.Sleep(300 * ms)
	if s.Current() != transport.PathDirect {
		t.Fatal("moved for a difference inside the hysteresis band")
	}
	cancel()
	mu.Lock()
	defer mu.Unlock()
	want := []transport.PathKind{transport.PathDirect, transport.PathRelayed, transport.PathDirect}
	if len(moves) != len(want) {
		t.Fatalf("moves %v, want %v", moves, want)
	}
	for i := range want {
		if moves[i] != want[i] {
			t.Fatalf("moves %v, want %v", moves, want)
		}
	}
}

// One slow sample (a ping queued behind the stream of the moment) does not
// hide a fast path: the comparison uses the smallest recent RTT.
func TestSampleMinRTTIgnoresAQueuedPing(t *testing.T) {
	var s Sample
	for _, rtt := range []time.Duration{400 * ms, 2 * ms, 90 * ms, 3 * ms} {
		s.add(rtt)
	}
	if s.MinRTT != 2*ms || s.N != 4 {
		t.Fatalf("%+v", s)
	}
	for range Window {
		s.add(20 * ms)
	}
	if s.MinRTT != 20*ms {
		t.Fatalf("old samples still count: %+v", s)
	}
}

// The relay's early samples were taken at another moment than the punched
// path's: after SetDirect the paths are compared only on samples taken
// together. Here the relay answered once in 10 ms while idle; now, with a
// stream queued at the shared bottleneck, it takes 45 ms and the direct path
// 30 ms (its probe took 60 ms at a worse moment still). The first joint
// measurement moves the session, with no Interval tick in between.
func TestSetDirectComparesSamplesTakenTogether(t *testing.T) {
	relay := &fakePath{kind: transport.PathRelayed, rtt: 45 * ms}
	direct := &fakePath{kind: transport.PathDirect, rtt: 30 * ms}
	moved := make(chan transport.PathKind, 4)
	s, err := New(Config{
		SetPath:  func(p Path) error { moved <- p.Kind(); return nil },
		Relay:    Candidate{Path: relay, Ping: relay.ping, RTT: 10 * ms},
		Interval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	if err := s.SetDirect(Candidate{Path: direct, Ping: direct.ping, RTT: 60 * ms}); err != nil {
		t.Fatal(err)
	}
	if s.Current() != transport.PathRelayed {
		t.Fatal("moved at once to a path the samples so far call clearly slower")
	}
	select {
	case k := <-moved:
		if k != transport.PathDirect {
			t.Fatalf("moved to %v", k)
		}
	case <-time.After(5 * time.Second):
		d, r := s.Samples()
		t.Fatalf("still on the relay: direct %+v, relay %+v", d, r)
	}
	d, r := s.Samples()
	if r.N != 1 || r.MinRTT != 45*ms || d.MinRTT != 30*ms {
		t.Fatalf("direct %+v, relay %+v: want one joint sample each", d, r)
	}
}
