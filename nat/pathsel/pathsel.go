// Package pathsel keeps a secure session on the better of its two paths
// to a peer: the relayed one (a relay circuit, always there as fallback)
// and a direct one punched later (nat/punch). It measures both paths' RTT
// with pings (comparing the smallest of the recent samples, so that the
// queueing of the moment's traffic does not decide), moves the session to
// the direct path as soon as one is punched unless it is clearly slower, back to the relay when the direct
// path stops answering or turns much slower (with hysteresis, so that
// noise does not make it flap), and again to the direct path when it
// recovers.
//
// The session is moved through a function (security/noise sessions'
// SetPath): the session keeps its keys and its streams, and the peer's
// session follows when our packets arrive over the new path (Noise moves
// a session on an authenticated packet). Only one side — the one that
// initiated the punch — runs a Selector; the other follows.
package pathsel

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/ipv8/go-ipv8/transport"
)

// Path is where a session's packets go: the method set of
// security/noise's Path (relay.Circuit and punch.Path have it).
type Path interface {
	WritePacket(pkt []byte) error
	Addr() netip.AddrPort
	Kind() transport.PathKind
	Overhead() int
}

// Candidate is a path the session can use and how to measure it.
type Candidate struct {
	// Path is what the session sends through (for a punched path on the
	// host's port, the Noise transport's own DirectPath to its address).
	Path Path
	// Ping measures the path's round-trip time (punch.Path.Ping for a
	// punched path, punch.Puncher.PingChannel for a circuit).
	Ping func(ctx context.Context) (time.Duration, error)
	// RTT is a first sample, if one is known (the punch's probe RTT, the
	// coordination's channel RTT); 0 when not.
	RTT time.Duration
}

// Config sets up a Selector.
type Config struct {
	// SetPath moves the session (security/noise PathSetter.SetPath).
	SetPath func(Path) error
	// Relay is the relayed path; the session runs over it at first.
	Relay Candidate
	// Interval is the period of the pings (default 1 s).
	Interval time.Duration
	// Hysteresis: the session leaves a working direct path for the relay
	// only when the direct path's RTT (Sample.MinRTT) exceeds the relay's
	// by this fraction plus Tolerance (default 0.2); it moves to the direct
	// path when its RTT is at most the relay's plus Tolerance.
	Hysteresis float64
	// Tolerance is an RTT difference treated as noise (default 5 ms):
	// within it the direct path wins, since it takes no relay capacity.
	Tolerance time.Duration
	// FailAfter is how many pings in a row a path may miss before it is
	// taken for dead (default 3).
	FailAfter int
	// OnSwitch, if set, is told of each move (after it happened).
	OnSwitch func(to transport.PathKind, direct, relay Sample)
	Logger   *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.Hysteresis <= 0 {
		c.Hysteresis = 0.2
	}
	if c.Tolerance <= 0 {
		c.Tolerance = 5 * time.Millisecond
	}
	if c.FailAfter <= 0 {
		c.FailAfter = 3
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Sample is what the Selector knows of one path.
type Sample struct {
	// MinRTT is the smallest RTT among the last Window answered pings:
	// the path's own delay, without the queueing the traffic of the moment
	// adds (which both paths share at the host's port). Choose compares it.
	MinRTT time.Duration
	SRTT   time.Duration // smoothed RTT (EWMA, 1/4 weight to the newest), for information
	N      int           // answered pings
	Fails  int           // pings missed in a row
	recent [Window]time.Duration
}

// Window is how many recent RTT samples MinRTT covers.
const Window = 8

func (s *Sample) add(rtt time.Duration) {
	if s.N == 0 {
		s.SRTT = rtt
	} else {
		s.SRTT = (3*s.SRTT + rtt) / 4
	}
	s.recent[s.N%Window] = rtt
	s.N++
	s.Fails = 0
	s.MinRTT = rtt
	for i := range min(s.N, Window) {
		s.MinRTT = min(s.MinRTT, s.recent[i])
	}
}

// Alive reports whether the path answers (at least once, and not failed
// failAfter times since).
func (s Sample) alive(failAfter int) bool { return s.N > 0 && s.Fails < failAfter }

// Selector keeps a session on the better path.
type Selector struct {
	cfg Config

	kick chan struct{} // measure now (a new direct path)

	mu     sync.Mutex
	cur    transport.PathKind
	direct *Candidate
	d, r   Sample
	moves  int
}

// New makes a Selector for a session that runs over cfg.Relay.
func New(cfg Config) (*Selector, error) {
	if cfg.SetPath == nil || cfg.Relay.Path == nil || cfg.Relay.Ping == nil {
		return nil, errors.New("pathsel: Config needs SetPath and a Relay with its Ping")
	}
	cfg = cfg.withDefaults()
	s := &Selector{cfg: cfg, cur: transport.PathRelayed, kick: make(chan struct{}, 1)}
	if cfg.Relay.RTT > 0 {
		s.r.add(cfg.Relay.RTT)
	}
	return s, nil
}

// SetDirect offers a punched direct path (replacing an earlier one). The
// session moves to it at once unless the RTTs known so far say it is
// clearly slower than the relay (by more than Hysteresis and Tolerance).
//
// From then on the two paths are compared only on samples taken together:
// the relay's earlier samples are dropped, and a fresh measurement of both
// starts at once. The first samples (the relay's coordination RTT, the
// direct path's probe RTT) and the relay's pings before the punch were
// taken at other moments; under a running stream the queue at the
// bottleneck swings by tens of milliseconds between moments, which would
// otherwise keep the session on the relay until the stream ends.
func (s *Selector) SetDirect(c Candidate) error {
	if c.Path == nil || c.Ping == nil {
		return errors.New("pathsel: a direct Candidate needs a Path and a Ping")
	}
	s.mu.Lock()
	s.direct = &c
	s.d = Sample{}
	if c.RTT > 0 {
		s.d.add(c.RTT)
	} else {
		s.d.add(time.Nanosecond) // it just answered a punch: alive, RTT unknown
	}
	want := Choose(transport.PathDirect, s.d, s.r, s.cfg) // "clearly slower" is the rule for leaving direct
	s.r = Sample{Fails: s.r.Fails}
	s.mu.Unlock()
	if want == transport.PathDirect {
		if err := s.move(transport.PathDirect); err != nil {
			return err
		}
	}
	select { // a fresh measurement of both paths, not a whole Interval later
	case s.kick <- struct{}{}:
	default:
	}
	return nil
}

// Current is the kind of path the session uses now.
func (s *Selector) Current() transport.PathKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Samples returns what the Selector knows of the direct and relayed paths.
func (s *Selector) Samples() (direct, relay Sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.d, s.r
}

// Moves counts the times the session was moved.
func (s *Selector) Moves() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.moves
}

// Choose is the rule: which path the session should use, given the one it
// uses and both samples.
func Choose(cur transport.PathKind, d, r Sample, cfg Config) transport.PathKind {
	cfg = cfg.withDefaults()
	dOK := d.alive(cfg.FailAfter)
	rOK := r.N == 0 && r.Fails < cfg.FailAfter || r.alive(cfg.FailAfter) // an unmeasured relay is presumed up
	switch {
	case !dOK:
		return transport.PathRelayed
	case !rOK || r.N == 0:
		return transport.PathDirect
	}
	if cur == transport.PathDirect {
		limit := time.Duration(float64(r.MinRTT)*(1+cfg.Hysteresis)) + cfg.Tolerance
		if d.MinRTT > limit {
			return transport.PathRelayed
		}
		return transport.PathDirect
	}
	if d.MinRTT <= r.MinRTT+cfg.Tolerance {
		return transport.PathDirect
	}
	return transport.PathRelayed
}

// decide applies Choose and moves the session if it says so.
func (s *Selector) decide() error {
	s.mu.Lock()
	want := Choose(s.cur, s.d, s.r, s.cfg)
	s.mu.Unlock()
	return s.move(want)
}

// move puts the session on the path of kind want, if it is not there.
func (s *Selector) move(want transport.PathKind) error {
	s.mu.Lock()
	if want == s.cur || (want == transport.PathDirect && s.direct == nil) {
		s.mu.Unlock()
		return nil
	}
	p := s.cfg.Relay.Path
	if want == transport.PathDirect {
		p = s.direct.Path
	}
	d, r := s.d, s.r
	s.mu.Unlock()
	if err := s.cfg.SetPath(p); err != nil {
		return err
	}
	s.mu.Lock()
	s.cur = want
	s.moves++
	s.mu.Unlock()
	s.cfg.Logger.Debug("pathsel: session moved", "to", want, "addr", p.Addr(), "direct_rtt", d.MinRTT, "relay_rtt", r.MinRTT, "direct_fails", d.Fails)
	if s.cfg.OnSwitch != nil {
		s.cfg.OnSwitch(want, d, r)
	}
	return nil
}

// Run pings both paths every Interval and keeps the session on the better
// one until ctx ends (or the session is gone: SetPath fails).
func (s *Selector) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-s.kick:
		}
		s.measure(ctx)
		if err := s.decide(); err != nil {
			return err
		}
	}
}

// measure pings both paths at once, each with a deadline of Interval.
func (s *Selector) measure(ctx context.Context) {
	s.mu.Lock()
	direct := s.direct
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Interval)
	defer cancel()
	var wg sync.WaitGroup
	ping := func(c Candidate, smp *Sample, current func() bool) {
		rtt, err := c.Ping(ctx)
		s.mu.Lock()
		defer s.mu.Unlock()
		if !current() {
			return // SetDirect replaced the path meanwhile
		}
		if err != nil {
			smp.Fails++
			return
		}
		smp.add(rtt)
	}
	wg.Go(func() { ping(s.cfg.Relay, &s.r, func() bool { return true }) })
	if direct != nil {
		wg.Go(func() { ping(*direct, &s.d, func() bool { return s.direct == direct }) })
	}
	wg.Wait()
}
