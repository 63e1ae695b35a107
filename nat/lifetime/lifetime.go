// Package lifetime measures how long a NAT keeps an idle UDP mapping, in
// the style of RFC 5780 §4.6: a round opens several fresh mappings at once
// and probes each after a different idle time; later rounds search between
// the longest time a mapping survived and the shortest at which one was
// gone, until the bracket is narrow enough.
//
// A probe must not refresh the mapping it measures: Linux conntrack moves a
// UDP flow that sees a second packet (2 s or more after its first) from its
// 30 s timeout to its 120 s one, and most NATs restart the idle timer on
// every outbound packet. So each mapping carries exactly one exchange
// before its probe, and the probe reaches it from outside: the STUN prober
// asks the server, from another socket, to answer to the mapping's public
// port (RESPONSE-PORT). Each mapping is probed once.
package lifetime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ipv8/go-ipv8/internal/clock"
	"github.com/ipv8/go-ipv8/nat"
)

// Prober makes mappings to measure.
type Prober interface {
	// Open creates a fresh mapping through the NAT: a new local port and
	// one exchange with a server. It blocks until the exchange is done.
	Open(ctx context.Context) (Mapping, error)
}

// Mapping is one fresh NAT mapping.
type Mapping interface {
	// Opened is when the mapping last carried a packet (the answer that
	// completed Open): its idle time counts from here.
	Opened() time.Time
	// Probe checks, from outside the mapping, whether it still exists. It
	// must not block (it may be called from a clock callback): it sends
	// at once and reports on the returned channel, true if alive.
	Probe() <-chan bool
	// Close releases the mapping's local port.
	Close() error
}

// Config bounds the search. The zero value is usable.
type Config struct {
	// Min and Max bound the idle times probed (default 4 s and 300 s).
	// A mapping alive at Max ends the search with Dead = 0.
	Min, Max time.Duration
	// Probes is the number of mappings in each round after the first
	// (default 8). The first round probes a ladder of common NAT timeouts.
	Probes int
	// Precision ends the search when Dead-Alive ≤ Precision·Alive
	// (default 0.1: the midpoint is then within 5 %).
	Precision float64
	// MaxRounds bounds the rounds (default 4).
	MaxRounds int
	Clock     clock.Clock
	Logger    *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Min <= 0 {
		c.Min = 4 * time.Second
	}
	if c.Max <= 0 {
		c.Max = 300 * time.Second
	}
	if c.Max < c.Min {
		c.Max = c.Min
	}
	if c.Probes <= 0 {
		c.Probes = 8
	}
	if c.Precision <= 0 {
		c.Precision = 0.1
	}
	if c.MaxRounds <= 0 {
		c.MaxRounds = 4
	}
	if c.Clock == nil {
		c.Clock = clock.Real
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Result is what the search found.
type Result struct {
	// Alive is the longest idle time at which a mapping was still there
	// (0: none was, even at Min); Dead the shortest at which one was gone
	// (0: none was, up to Max).
	Alive, Dead time.Duration
	Rounds      int
	Mappings    int
}

// Estimate is the best single figure: the middle of the bracket, or its
// known end when the other is open.
func (r Result) Estimate() time.Duration {
	switch {
	case r.Dead == 0:
		return r.Alive
	case r.Alive == 0:
		return r.Dead
	}
	return (r.Alive + r.Dead) / 2
}

// Keepalive is the keepalive interval for idle paths that follows from the
// result (nat.KeepaliveInterval of the lower bound).
func (r Result) Keepalive() time.Duration { return nat.KeepaliveInterval(r.Alive) }

func (r Result) String() string {
	switch {
	case r.Dead == 0:
		return fmt.Sprintf("more than %s", r.Alive)
	case r.Alive == 0:
		return fmt.Sprintf("less than %s", r.Dead)
	}
	return fmt.Sprintf("%.1f s (alive at %.1f s, gone at %.1f s)", r.Estimate().Seconds(), r.Alive.Seconds(), r.Dead.Seconds())
}

// ladder are the idle timeouts NATs commonly use (Linux conntrack 30 s
// and 120 s/180 s, RFC 4787's 2 minutes, and shorter and longer ones);
// the first round probes those within [Min, Max], plus Max.
var ladder = []time.Duration{5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 90, 120, 150, 180, 240, 300, 450, 600}

// firstRound returns the idle times of the first round.
func firstRound(min, max time.Duration) []time.Duration {
	ts := []time.Duration{min}
	for _, s := range ladder {
		if t := s * time.Second; t > min && t < max {
			ts = append(ts, t)
		}
	}
	if max > min {
		ts = append(ts, max)
	}
	return ts
}

// nextRound returns k idle times spread evenly inside (alive, dead).
func nextRound(alive, dead time.Duration, k int) []time.Duration {
	ts := make([]time.Duration, 0, k)
	step := (dead - alive) / time.Duration(k+1)
	if step <= 0 {
		return nil
	}
	for i := 1; i <= k; i++ {
		ts = append(ts, (alive + time.Duration(i)*step).Round(time.Millisecond))
	}
	return slices.Compact(ts)
}

// narrow applies a round's outcomes (idle time → alive) to the bracket.
// A mapping alive after a longer idle time than one that was gone (a lost
// probe, or a NAT that is not monotonic) is ignored in favour of the
// shortest death: the bracket errs towards a shorter lifetime, which only
// makes keepalives more frequent.
func narrow(alive, dead time.Duration, got map[time.Duration]bool) (time.Duration, time.Duration) {
	for t, ok := range got {
		if !ok && (dead == 0 || t < dead) {
			dead = t
		}
	}
	for t, ok := range got {
		if ok && t > alive && (dead == 0 || t < dead) {
			alive = t
		}
	}
	return alive, dead
}

// Errors of Measure, usable with errors.Is.
var (
	// ErrNoMapping: the prober could not open any mapping (no server answer).
	ErrNoMapping = errors.New("lifetime: could not open a mapping")
	// ErrProbeFailed: a mapping probed right after it was opened looked
	// gone, so the probes cannot be trusted (for the STUN prober: the server
	// ignores RESPONSE-PORT, or the NAT filters its answers).
	ErrProbeFailed = errors.New("lifetime: a fresh mapping does not answer its probe (server without RESPONSE-PORT?)")
)

// Measure runs the search. It takes about the lifetime once per round
// (rounds stop at their first dead mapping), so a 30 s NAT takes about a
// minute; it ends early with what it has when ctx ends.
func Measure(ctx context.Context, p Prober, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	var res Result
	// A probe right after opening must see the mapping, or nothing that
	// follows means anything.
	got, err := runRound(ctx, p, []time.Duration{0}, cfg)
	res.Mappings++
	if err != nil {
		return res, err
	}
	if !got[0] {
		return res, ErrProbeFailed
	}
	ts := firstRound(cfg.Min, cfg.Max)
	for round := 1; round <= cfg.MaxRounds && len(ts) > 0; round++ {
		got, err = runRound(ctx, p, ts, cfg)
		res.Rounds, res.Mappings = round, res.Mappings+len(ts)
		if err != nil {
			return res, err
		}
		res.Alive, res.Dead = narrow(res.Alive, res.Dead, got)
		cfg.Logger.Debug("lifetime: round", "round", round, "probed", ts, "alive", res.Alive, "dead", res.Dead)
		if res.Dead == 0 || (res.Alive > 0 && float64(res.Dead-res.Alive) <= cfg.Precision*float64(res.Alive)) {
			break
		}
		ts = nextRound(res.Alive, res.Dead, cfg.Probes)
	}
	return res, nil
}

// runRound opens len(ts) mappings at once, probes mapping i after idle
// time ts[i], and stops at the first death (longer idle times would die
// too). It returns the outcome of every probe that ran.
func runRound(ctx context.Context, p Prober, ts []time.Duration, cfg Config) (map[time.Duration]bool, error) {
	ms := make([]Mapping, len(ts))
	var wg sync.WaitGroup
	errs := make([]error, len(ts))
	for i := range ts {
		wg.Go(func() { ms[i], errs[i] = p.Open(ctx) })
	}
	wg.Wait()
	defer func() {
		for _, m := range ms {
			if m != nil {
				m.Close()
			}
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type outcome struct {
		t     time.Duration
		alive bool
	}
	out := make(chan outcome, len(ts))
	var timers []clock.Timer
	defer func() {
		for _, tm := range timers {
			tm.Stop()
		}
	}()
	waiting := 0
	for i, t := range ts {
		if ms[i] == nil {
			continue
		}
		m := ms[i]
		waiting++
		d := m.Opened().Add(t).Sub(cfg.Clock.Now())
		timers = append(timers, cfg.Clock.AfterFunc(d, func() {
			ch := m.Probe()
			go func() { out <- outcome{t, <-ch} }()
		}))
	}
	if waiting == 0 {
		return nil, fmt.Errorf("%w: %w", ErrNoMapping, errors.Join(errs...))
	}
	got := map[time.Duration]bool{}
	for ; waiting > 0; waiting-- {
		select {
		case o := <-out:
			got[o.t] = o.alive
			if !o.alive {
				return got, nil
			}
		case <-ctx.Done():
			return got, ctx.Err()
		}
	}
	return got, nil
}
