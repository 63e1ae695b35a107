package noise

import (
	"math"
	"testing"
)

func accept1(w *replayWindow, c uint64) bool {
	if !w.check(c) {
		return false
	}
	ok, _ := w.update(c)
	return ok
}

func TestReplayWindowDropsDuplicate(t *testing.T) {
	var w replayWindow
	for c := uint64(0); c < 100; c++ {
		if !accept1(&w, c) {
			t.Fatalf("fresh counter %d refused", c)
		}
	}
	for c := uint64(0); c < 100; c++ {
		if accept1(&w, c) {
			t.Fatalf("duplicate %d accepted", c)
		}
	}
}

func TestReplayWindowAcceptsOutOfOrderWithinWindow(t *testing.T) {
	var w replayWindow
	const top = 10000
	if !accept1(&w, top) {
		t.Fatal("first counter refused")
	}
	for c := uint64(top - 1); c > top-ReplayWindow; c-- {
		if !accept1(&w, c) {
			t.Fatalf("counter %d within the window refused", c)
		}
	}
	for c := uint64(top - ReplayWindow - 1); c > top-ReplayWindow-100; c-- {
		if accept1(&w, c) {
			t.Fatalf("counter %d outside the window accepted", c)
		}
	}
	if ReplayWindow < 2048 {
		t.Fatalf("window %d smaller than the 2048 required", ReplayWindow)
	}
}

func TestReplayWindowJumpClearsOldBits(t *testing.T) {
	var w replayWindow
	for c := uint64(0); c < 64*70; c += 3 {
		accept1(&w, c)
	}
	// Jump far ahead: everything old is out of the window, and new counters
	// that share ring words with old ones must not look seen.
	base := uint64(1 << 40)
	if !accept1(&w, base) {
		t.Fatal("jump refused")
	}
	for c := base - 1; c > base-ReplayWindow; c -= 7 {
		if !accept1(&w, c) {
			t.Fatalf("counter %d after a jump refused (stale bit)", c)
		}
	}
	if accept1(&w, 5) {
		t.Fatal("ancient counter accepted")
	}
}

func TestReplayWindowNewestFlag(t *testing.T) {
	var w replayWindow
	if _, newest := w.update(10); !newest {
		t.Fatal("first is newest")
	}
	if _, newest := w.update(5); newest {
		t.Fatal("older counter reported newest")
	}
	if _, newest := w.update(11); !newest {
		t.Fatal("higher counter not newest")
	}
}

// TestReplayWindowMatchesModel runs long random sequences of counters
// (runs forward, jitter backwards, duplicates, jumps of every size around
// the window's) through the window and a plain model of its rule: a counter
// is accepted once, if it is above the highest accepted or at most
// ReplayWindow-1 below it.
func TestReplayWindowMatchesModel(t *testing.T) {
	seed := uint64(7)
	rnd := func(n uint64) uint64 {
		seed ^= seed << 13
		seed ^= seed >> 7
		seed ^= seed << 17
		return seed % n
	}
	for run := range 20 {
		var w replayWindow
		seen := map[uint64]bool{}
		var highest uint64
		anyYet := false
		c := rnd(1 << 20)
		for step := range 20000 {
			switch r := rnd(100); {
			case r < 50:
				c++
			case r < 75:
				c -= min(c, rnd(ReplayWindow+200))
			case r < 85:
				c += rnd(ReplayWindow + 200)
			case r < 90:
				c += ReplayWindow - 3 + rnd(7) // just around a full window
			case r < 95 && anyYet:
				c = highest - min(highest, rnd(70)) // a replay of the newest few
			default: // a duplicate of something recent
			}
			want := !seen[c] && (!anyYet || c > highest || highest-c < ReplayWindow)
			if got := w.check(c); got != want {
				t.Fatalf("run %d step %d: check(%d) = %v, want %v (highest %d)", run, step, c, got, want, highest)
			}
			ok, newest := w.update(c)
			if ok != want {
				t.Fatalf("run %d step %d: update(%d) = %v, want %v", run, step, c, ok, want)
			}
			if ok {
				seen[c] = true
				if newest != (!anyYet || c > highest) {
					t.Fatalf("run %d step %d: newest = %v for %d (highest %d)", run, step, newest, c, highest)
				}
				if !anyYet || c > highest {
					highest, anyYet = c, true
				}
			}
		}
	}
}

func TestReplayWindowRefusesLastNonce(t *testing.T) {
	var w replayWindow
	if accept1(&w, math.MaxUint64) {
		t.Fatal("counter 2^64-1 accepted")
	}
	if !accept1(&w, math.MaxUint64-1) || accept1(&w, math.MaxUint64-1) {
		t.Fatal("counter 2^64-2 not accepted exactly once")
	}
}
