package reliable

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/protocol"
	"github.com/ipv8/go-ipv8/transport"
)

// fedConn is the responder's side of a Conn on a null session, fed
// packets by hand as if the remote (the initiator, whose streams have even
// IDs) had sent them. Feeding from several goroutines is like a session
// delivering on more than one.
type fedConn struct {
	t  *testing.T
	m  *Muxer
	c  *conn
	pn atomic.Uint64
}

func newFedConn(t *testing.T) *fedConn {
	t.Helper()
	m := New(Config{KeepAlive: -1})
	t.Cleanup(func() { m.Close() })
	tc, err := m.NewConn(newNullSession(), false)
	if err != nil {
		t.Fatal(err)
	}
	return &fedConn{t: t, m: m, c: tc.(*conn)}
}

// packet delivers one packet carrying frames.
func (f *fedConn) packet(frames ...interface{ append([]byte) []byte }) {
	b := PacketHeader{PacketNumber: f.pn.Add(1) - 1}.Append(nil)
	for _, fr := range frames {
		b = fr.append(b)
	}
	f.c.receive(b)
}

// openStream delivers the STREAM_OPEN of the remote's stream with index
// idx, carrying its index as data.
func (f *fedConn) openStream(idx uint64) {
	f.packet(&streamOpenFrame{
		streamFrame: streamFrame{id: idx << 1, data: []byte(fmt.Sprint(idx))},
		protocol:    []byte("/test/cb/1"),
	})
}

func (f *fedConn) datagram(s string) { f.packet(datagramFrame{data: []byte(s)}) }

// recorder is a set of callbacks that records what they were given and
// fails the test when two run at once or anything follows onClose.
type recorder struct {
	t       *testing.T
	mu      sync.Mutex
	streams []transport.Stream
	dgrams  []string
	closes  int
	running atomic.Int32
	closed  chan struct{}
}

func newRecorder(t *testing.T) *recorder {
	return &recorder{t: t, closed: make(chan struct{})}
}

func (r *recorder) enter(what string) {
	if r.running.Add(1) != 1 {
		r.t.Errorf("%s: callbacks ran concurrently", what)
	}
	runtime.Gosched() // widen the window for a concurrent or reordered delivery
	r.mu.Lock()
	if r.closes > 0 {
		r.t.Errorf("%s after onClose", what)
	}
	r.mu.Unlock()
}

func (r *recorder) leave() { r.running.Add(-1) }

func (r *recorder) onStream(s transport.Stream) {
	r.enter("onStream")
	defer r.leave()
	r.mu.Lock()
	r.streams = append(r.streams, s)
	r.mu.Unlock()
}

func (r *recorder) onDatagram(b []byte) {
	r.enter("onDatagram")
	defer r.leave()
	r.mu.Lock()
	r.dgrams = append(r.dgrams, string(b))
	r.mu.Unlock()
}

func (r *recorder) onClose() {
	r.enter("onClose")
	defer r.leave()
	r.mu.Lock()
	r.closes++
	if r.closes == 1 {
		close(r.closed)
	}
	r.mu.Unlock()
}

func (r *recorder) install(c transport.Conn) {
	c.(transport.CallbackConn).SetCallbacks(r.onStream, r.onDatagram, r.onClose)
}

// ids returns the IDs of the streams delivered so far, in delivery order.
func (r *recorder) ids() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]uint64, len(r.streams))
	for i, s := range r.streams {
		out[i] = s.(*stream).id
	}
	return out
}

func (r *recorder) datagrams() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.dgrams...)
}

func (r *recorder) closeCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closes
}

// waitClosed waits for onClose and then checks that no second call follows.
func (r *recorder) waitClosed() {
	r.t.Helper()
	select {
	case <-r.closed:
	case <-time.After(20 * time.Second):
		r.t.Fatal("onClose was not called")
	}
	time.Sleep(20 * time.Millisecond)
	if n := r.closeCount(); n != 1 {
		r.t.Fatalf("onClose called %d times, want once", n)
	}
}

func TestSetCallbacksDeliversQueuedItemsAtOnceThenNewOnesInArrivalOrder(t *testing.T) {
	f := newFedConn(t)
	// Before the callbacks: in a deliberately scrambled order.
	for _, idx := range []uint64{2, 0, 1} {
		f.openStream(idx)
	}
	f.datagram("a")
	f.datagram("b")

	r := newRecorder(t)
	r.install(f.c)
	// SetCallbacks delivered what was queued before it returned.
	if got, want := fmt.Sprint(r.ids()), fmt.Sprint([]uint64{4, 0, 2}); got != want {
		t.Fatalf("queued streams delivered as %s, want %s (arrival order)", got, want)
	}
	if got := fmt.Sprint(r.datagrams()); got != "[a b]" {
		t.Fatalf("queued datagrams delivered as %s, want [a b]", got)
	}

	// After: delivered as they arrive, on the receiving goroutine.
	f.openStream(4)
	f.datagram("c")
	f.openStream(3)
	if got, want := fmt.Sprint(r.ids()), fmt.Sprint([]uint64{4, 0, 2, 8, 6}); got != want {
		t.Fatalf("streams delivered as %s, want %s", got, want)
	}
	if got := fmt.Sprint(r.datagrams()); got != "[a b c]" {
		t.Fatalf("datagrams delivered as %s, want [a b c]", got)
	}

	// A delivered stream is a live stream with its protocol and data.
	s := r.streams[3]
	if s.Protocol() != protocol.ID("/test/cb/1") {
		t.Fatalf("stream protocol %q", s.Protocol())
	}
	buf := make([]byte, 8)
	n, err := s.Read(buf)
	if err != nil || string(buf[:n]) != "4" {
		t.Fatalf("stream read %q, %v; want \"4\"", buf[:n], err)
	}
	if r.closeCount() != 0 {
		t.Fatal("onClose called on a live Conn")
	}
}

func TestAcceptStreamAndReceiveDatagramFailOnceCallbacksAreInstalled(t *testing.T) {
	f := newFedConn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Callers already waiting wake up with the error, all of them.
	errs := make(chan error, 4)
	for range 2 {
		go func() { _, err := f.c.AcceptStream(ctx); errs <- err }()
		go func() { _, err := f.c.ReceiveDatagram(ctx); errs <- err }()
	}
	time.Sleep(20 * time.Millisecond) // let them block
	newRecorder(t).install(f.c)
	for range 4 {
		if err := <-errs; !errors.Is(err, ErrCallbacksInstalled) {
			t.Fatalf("waiting call returned %v, want ErrCallbacksInstalled", err)
		}
	}
	// Later calls fail at once, even with a stream queued meanwhile.
	f.openStream(0)
	if _, err := f.c.AcceptStream(ctx); !errors.Is(err, ErrCallbacksInstalled) {
		t.Fatalf("AcceptStream: %v, want ErrCallbacksInstalled", err)
	}
	if _, err := f.c.ReceiveDatagram(ctx); !errors.Is(err, ErrCallbacksInstalled) {
		t.Fatalf("ReceiveDatagram: %v, want ErrCallbacksInstalled", err)
	}
}

func TestSetCallbacksTwicePanics(t *testing.T) {
	f := newFedConn(t)
	newRecorder(t).install(f.c)
	defer func() {
		if recover() == nil {
			t.Fatal("second SetCallbacks did not panic")
		}
	}()
	newRecorder(t).install(f.c)
}

func TestOnCloseCalledOnceWhenConnEnds(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(f *fedConn)
	}{
		{"local close", func(f *fedConn) { f.c.CloseWithError(0x100, "bye") }},
		{"remote CLOSE", func(f *fedConn) { f.packet(closeFrame{code: 0x100, reason: []byte("bye")}) }},
		{"session ends", func(f *fedConn) { f.c.sess.Close(); f.m.schedule(f.c) }},
		{"muxer closes", func(f *fedConn) { f.m.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFedConn(t)
			r := newRecorder(t)
			r.install(f.c)
			f.openStream(0)
			tc.end(f)
			r.waitClosed()
			<-f.c.Done()
			// Closing again, and the Muxer's close, call nothing more.
			f.c.Close()
			f.m.Close()
			if n := r.closeCount(); n != 1 {
				t.Fatalf("onClose called %d times, want once", n)
			}
			if got := fmt.Sprint(r.ids()); got != "[0]" {
				t.Fatalf("streams delivered %s, want [0]", got)
			}
		})
	}
}

func TestOnCloseCalledAtOnceForConnEndedBeforeSetCallbacks(t *testing.T) {
	f := newFedConn(t)
	f.openStream(0)
	f.datagram("late")
	f.c.CloseWithError(0x100, "bye")
	<-f.c.Done()
	r := newRecorder(t)
	r.install(f.c)
	if n := r.closeCount(); n != 1 {
		t.Fatalf("onClose called %d times by SetCallbacks on an ended Conn, want once", n)
	}
	// The queued stream is dead (every call on it fails): not handed out.
	if ids := r.ids(); len(ids) != 0 {
		t.Fatalf("streams of an ended Conn delivered: %v", ids)
	}
}

func TestNilOnStreamResetsStreamsAsUnsupported(t *testing.T) {
	p := loopbackPair(t, Config{}, plainPayload)
	closed := make(chan struct{})
	p.server.(transport.CallbackConn).SetCallbacks(nil, nil, func() { close(closed) })
	ctx := ctxT(t, 20*time.Second)
	s, err := p.client.OpenStream(ctx, "/test/nobody/1")
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("hello"))
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, transport.ErrProtocolNotSupported) {
		t.Fatalf("read: %v, want ErrProtocolNotSupported", err)
	}
	p.client.Close()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("server's onClose not called after the remote closed")
	}
}

// TestCallbacksServeStreamsOverLoopback runs a Conn the way the Host does:
// an onStream that starts a handler goroutine per stream (the stream's
// Read and Write from there), datagrams echoed from onDatagram.
func TestCallbacksServeStreamsOverLoopback(t *testing.T) {
	p := loopbackPair(t, Config{}, plainPayload)
	ended := make(chan struct{})
	p.server.(transport.CallbackConn).SetCallbacks(
		func(s transport.Stream) {
			go func() {
				defer s.Close()
				io.Copy(s, s)
			}()
		},
		func(b []byte) { p.server.SendDatagram(append([]byte("echo "), b...)) },
		func() { close(ended) })
	ctx := ctxT(t, 30*time.Second)
	const streams = 20
	var wg sync.WaitGroup
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := p.client.OpenStream(ctx, "/test/echo/1")
			if err != nil {
				t.Error(err)
				return
			}
			msg := fmt.Sprintf("stream %d", i)
			s.Write([]byte(msg))
			s.CloseWrite()
			got, err := io.ReadAll(s)
			if err != nil || string(got) != msg {
				t.Errorf("stream %d echoed %q, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	// Datagrams are unreliable, but loopback does not drop a few.
	if err := p.client.SendDatagram([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if d, err := p.client.ReceiveDatagram(ctx); err != nil || string(d) != "echo ping" {
		t.Fatalf("datagram reply %q, %v", d, err)
	}
	p.client.Close()
	select {
	case <-ended:
	case <-ctx.Done():
		t.Fatal("onClose not called after the remote closed")
	}
}

// TestCallbacksRaceArrivingStreams installs the callbacks while several
// goroutines feed streams and datagrams: every stream and datagram is
// delivered exactly once, each feeder's in the order it fed them, and no
// two callbacks run at once (the recorder checks; run with -race).
func TestCallbacksRaceArrivingStreams(t *testing.T) {
	const feeders, perFeeder = 4, 30 // at most 128 datagrams queue before the callbacks
	for iter := range 20 {
		f := newFedConn(t)
		r := newRecorder(t)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range feeders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := range perFeeder {
					f.openStream(uint64(i*feeders + g)) // feeder g's indices ≡ g mod feeders, increasing
					f.datagram(fmt.Sprintf("%d/%d", g, i))
				}
			}()
		}
		close(start)
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		r.install(f.c)
		wg.Wait()

		ids := r.ids()
		if len(ids) != feeders*perFeeder {
			t.Fatalf("iteration %d: %d streams delivered, want %d", iter, len(ids), feeders*perFeeder)
		}
		seen := make(map[uint64]bool)
		last := make([]int64, feeders)
		for g := range last {
			last[g] = -1
		}
		for _, id := range ids {
			idx := id >> 1
			if seen[idx] {
				t.Fatalf("iteration %d: stream %d delivered twice", iter, idx)
			}
			seen[idx] = true
			g := idx % feeders
			if int64(idx) <= last[g] {
				t.Fatalf("iteration %d: feeder %d's stream %d delivered after %d", iter, g, idx, last[g])
			}
			last[g] = int64(idx)
		}
		dg := r.datagrams()
		if len(dg) != feeders*perFeeder {
			t.Fatalf("iteration %d: %d datagrams delivered, want %d", iter, len(dg), feeders*perFeeder)
		}
		next := make([]int, feeders)
		for _, d := range dg {
			var g, i int
			fmt.Sscanf(d, "%d/%d", &g, &i)
			if i != next[g] {
				t.Fatalf("iteration %d: feeder %d's datagram %d delivered when %d was due", iter, g, i, next[g])
			}
			next[g]++
		}
		f.c.Close()
		r.waitClosed()
		f.m.Close()
	}
}

// TestCallbacksRaceClose installs the callbacks while streams arrive and
// the Conn closes, in every interleaving the scheduler finds: onClose is
// called exactly once, after every other callback, and no stream is
// delivered twice.
func TestCallbacksRaceClose(t *testing.T) {
	for iter := range 100 {
		f := newFedConn(t)
		r := newRecorder(t)
		var wg sync.WaitGroup
		wg.Add(3)
		go func() {
			defer wg.Done()
			for i := range 20 {
				f.openStream(uint64(i))
			}
		}()
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
			r.install(f.c)
		}()
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
			if iter%2 == 0 {
				f.c.CloseWithError(0x100, "bye")
			} else {
				f.m.Close()
			}
		}()
		wg.Wait()
		r.waitClosed()
		seen := make(map[uint64]bool)
		for _, id := range r.ids() {
			if seen[id] {
				t.Fatalf("iteration %d: stream %d delivered twice", iter, id)
			}
			seen[id] = true
		}
		f.m.Close()
	}
}
