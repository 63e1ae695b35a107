package noise

import (
	"crypto/rand"
	"sync"
	"testing"
)

// The pool hands its ready key out once, makes a fresh one on refill, and
// wipes what it holds when closed (and keeps nothing after).
func TestEphemeralPoolServesEachKeyOnce(t *testing.T) {
	var p ephPool
	p.refill(rand.Reader)
	ready := p.ready
	if ready == nil {
		t.Fatal("refill left no key ready")
	}
	k1, err := p.take(rand.Reader)
	if err != nil || k1 != ready {
		t.Fatalf("take did not return the ready key (%v)", err)
	}
	k2, err := p.take(rand.Reader) // none ready: made on the spot
	if err != nil || k2 == k1 || k2.private == k1.private || k2.public == k1.public {
		t.Fatal("a key was handed out twice")
	}
	var want [32]byte
	x25519Base(&want, k2.private[:])
	if k2.public != want {
		t.Fatal("a key made on the spot is not X25519(private, 9)")
	}
	p.refill(rand.Reader)
	held := p.ready
	if held == nil || held.private == k1.private || held.private == k2.private {
		t.Fatal("refill did not make a new key")
	}
	p.refill(rand.Reader)
	if p.ready != held {
		t.Fatal("refill replaced a key that was ready")
	}
	p.close()
	if p.ready != nil || held.private != ([32]byte{}) {
		t.Fatal("close left the ready key, or did not wipe it")
	}
	p.refill(rand.Reader)
	if p.ready != nil {
		t.Fatal("a closed pool made a key")
	}
}

// Two dials in a row send different ephemeral keys, and the key the
// dialler keeps ready is not one that went out.
func TestDialsUseFreshEphemeralKeys(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	c := newNode(t, n, "10.0.0.3:3000", nil, Config{Clock: clk})
	var mu sync.Mutex
	var sent [][32]byte
	n.mu.Lock()
	n.tap = func(p fakePacket) {
		if in, err := ParseInitiation(p.data); err == nil {
			var e [32]byte
			copy(e[:], in.ephemeralOf())
			mu.Lock()
			sent = append(sent, e)
			mu.Unlock()
		}
	}
	n.mu.Unlock()
	_, _ = pair(t, a, b, true)
	n.settle()
	_, _ = pair(t, a, c, true)
	n.settle()
	mu.Lock()
	defer mu.Unlock()
	if len(sent) < 2 {
		t.Fatalf("%d initiations seen", len(sent))
	}
	for i := range sent {
		for j := i + 1; j < len(sent); j++ {
			if sent[i] == sent[j] {
				t.Fatal("two initiations carried the same ephemeral key")
			}
		}
	}
	for _, tr := range []*Transport{a.tr, b.tr, c.tr} {
		tr.ephs.mu.Lock()
		k := tr.ephs.ready
		tr.ephs.mu.Unlock()
		if k != nil {
			for _, e := range sent {
				if k.public == e {
					t.Fatal("the ready key already went out")
				}
			}
		}
	}
}
