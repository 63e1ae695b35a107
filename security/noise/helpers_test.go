package noise

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/security"
)

// node is one host in a test: its identity, port and Transport.
type node struct {
	key  *peer.PrivateKey
	port *fakePort
	tr   *Transport
}

func newKey(t testing.TB) *peer.PrivateKey {
	t.Helper()
	k, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newPyKey makes an identity as py-ipv8 does: an X25519 key independent of
// the Ed25519 key.
func newPyKey(t testing.TB) *peer.PrivateKey {
	t.Helper()
	seed, x := make([]byte, 32), make([]byte, 32)
	rand.Read(seed)
	rand.Read(x)
	k, err := peer.NewKeyFromParts(seed, x)
	if err != nil {
		t.Fatal(err)
	}
	if k.Public().IsNative() {
		t.Fatal("py-ipv8 style key came out native")
	}
	return k
}

func newNode(t testing.TB, n *fakeNet, addr string, key *peer.PrivateKey, cfg Config) *node {
	t.Helper()
	if key == nil {
		key = newKey(t)
	}
	p := n.newPort(addr)
	tr, err := New(key, p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return &node{key: key, port: p, tr: tr}
}

func (nd *node) id() peer.ID { return nd.key.ID() }

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// inbox collects what a session receives.
type inbox struct {
	mu   sync.Mutex
	msgs [][]byte
	ch   chan struct{}
}

func newInbox(s security.Session) *inbox {
	in := &inbox{ch: make(chan struct{}, 1<<16)}
	s.SetReceiver(func(b []byte) {
		in.mu.Lock()
		in.msgs = append(in.msgs, append([]byte(nil), b...))
		in.mu.Unlock()
		select {
		case in.ch <- struct{}{}:
		default:
		}
	})
	return in
}

func (in *inbox) all() [][]byte {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([][]byte(nil), in.msgs...)
}

func (in *inbox) count() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.msgs)
}

// waitN waits (in real time, generously) until n messages arrived.
func (in *inbox) waitN(t testing.TB, n int) [][]byte {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for in.count() < n {
		select {
		case <-in.ch:
		case <-deadline:
			t.Fatalf("got %d messages, want %d", in.count(), n)
		}
	}
	return in.all()
}

// eventually polls cond in real time.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// dialAsync runs Dial on its own goroutine (it blocks until packets flow).
func dialAsync(t testing.TB, from *node, to *node, byID bool, early []byte) <-chan dialResult {
	ch := make(chan dialResult, 1)
	var id peer.ID
	if byID {
		id = to.id()
	}
	go func() {
		s, err := from.tr.Dial(ctxT(t, 20*time.Second), to.port.LocalAddr(), id, early)
		ch <- dialResult{s, err}
	}()
	return ch
}

type dialResult struct {
	s   security.Session
	err error
}

func accept(t testing.TB, nd *node) security.Session {
	t.Helper()
	s, err := nd.tr.Accept(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	return s
}

// pair dials b from a and returns both ends.
func pair(t testing.TB, a, b *node, byID bool) (security.Session, security.Session) {
	t.Helper()
	r := <-dialAsync(t, a, b, byID, nil)
	if r.err != nil {
		t.Fatalf("Dial: %v", r.err)
	}
	return r.s, accept(t, b)
}
