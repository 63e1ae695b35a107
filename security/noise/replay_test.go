package noise

import "testing"

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
