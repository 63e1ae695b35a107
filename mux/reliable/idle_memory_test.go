package reliable

import (
	"io"
	"testing"
	"time"
	"unsafe"

	"github.com/ipv8/go-ipv8/transport"
)

// TestFinishedExchangeLeavesNoTimerOrStreamTable runs a request/response
// with long deadlines on both sides, the way the Host's identify does
// (30 s deadlines, done in milliseconds): once both ends closed the stream,
// no deadline timer is left running (it would hold its memory until it
// fired) and neither Conn keeps a stream table.
func TestFinishedExchangeLeavesNoTimerOrStreamTable(t *testing.T) {
	p := loopbackPair(t, Config{}, plainPayload)
	ctx := ctxT(t, 20*time.Second)
	served := make(chan *stream, 1)
	p.server.(transport.CallbackConn).SetCallbacks(func(s transport.Stream) {
		go func() {
			s.SetWriteDeadline(time.Now().Add(30 * time.Second))
			s.Write([]byte("who I am"))
			s.Close()
			served <- s.(*stream)
		}()
	}, nil, nil)

	ts, err := p.client.OpenStream(ctx, "/test/identify/1")
	if err != nil {
		t.Fatal(err)
	}
	ts.CloseWrite()
	ts.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(ts)
	if err != nil || string(got) != "who I am" {
		t.Fatalf("read %q, %v", got, err)
	}
	ts.Close()
	cs, ss := ts.(*stream), <-served

	for _, tc := range []struct {
		name string
		dl   *deadline
	}{{"client read", &cs.readDL}, {"server write", &ss.writeDL}} {
		tc.dl.mu.Lock()
		running := tc.dl.timer != nil
		tc.dl.mu.Unlock()
		if running {
			t.Errorf("%s deadline's timer still running after Close", tc.name)
		}
	}
	for _, c := range []*conn{p.client.(*conn), p.server.(*conn)} {
		waitFor(t, func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.streams == nil
		}, "the finished stream to be forgotten and the stream table released")
	}
}

func TestDeadlineWorksAfterRelease(t *testing.T) {
	var d deadline
	d.set(time.Now().Add(time.Hour))
	d.release()
	if d.timer != nil {
		t.Fatal("release left the timer")
	}
	select {
	case <-d.wait():
		t.Fatal("released deadline fired")
	default:
	}
	// A deadline set again still fires.
	d.set(time.Now().Add(time.Millisecond))
	select {
	case <-d.wait():
	case <-time.After(10 * time.Second):
		t.Fatal("deadline set after release did not fire")
	}
	// Releasing a deadline whose timer already fired keeps it passed.
	d.release()
	select {
	case <-d.wait():
	default:
		t.Fatal("a passed deadline no longer reads as passed after release")
	}
}

// TestIdleConnReleasesSentHistory: once everything a Conn sent is
// acknowledged, it holds no sent-packet history (nor its frame records)
// and no send queues, and a stream opened afterwards still works.
func TestIdleConnReleasesSentHistory(t *testing.T) {
	p := loopbackPair(t, Config{}, plainPayload)
	ctx := ctxT(t, 20*time.Second)
	p.server.(transport.CallbackConn).SetCallbacks(func(s transport.Stream) {
		go func() {
			io.Copy(s, s)
			s.Close()
		}()
	}, nil, nil)
	echo := func() {
		t.Helper()
		s, err := p.client.OpenStream(ctx, "/test/echo/1")
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte("ping"))
		s.CloseWrite()
		got, err := io.ReadAll(s)
		if err != nil || string(got) != "ping" {
			t.Fatalf("echo %q, %v", got, err)
		}
		s.Close()
	}
	echo()
	for _, c := range []*conn{p.client.(*conn), p.server.(*conn)} {
		waitFor(t, func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.sent.len() == 0 && c.sent.buf == nil && c.frames.buf == nil &&
				c.q == nil
		}, "the acknowledged history to be released")
	}
	echo()
}

// TestConnDoneMadeOnDemand: a Conn nobody waited on holds no Done channel;
// Finished tells whether it ended, Done asked after the end is closed, and
// Done asked before it is closed by it.
func TestConnDoneMadeOnDemand(t *testing.T) {
	p := loopbackPair(t, Config{}, plainPayload)
	client, server := p.client.(*conn), p.server.(*conn)
	for _, c := range []*conn{client, server} {
		c.mu.Lock()
		held := c.done != nil
		c.mu.Unlock()
		if held {
			t.Fatal("a Conn nobody waited on made its Done channel")
		}
		if c.Finished() || transport.Ended(c) {
			t.Fatal("a live Conn reports it ended")
		}
	}
	waiting := server.Done()
	client.Close()
	if !client.Finished() || !transport.Ended(client) {
		t.Fatal("a closed Conn does not report it ended")
	}
	select {
	case <-client.Done():
	default:
		t.Fatal("Done asked after the close is not closed")
	}
	select {
	case <-waiting: // the CLOSE frame ends the server's Conn
	case <-time.After(10 * time.Second):
		t.Fatal("Done asked before the end was not closed by it")
	}
	if !server.Finished() {
		t.Fatal("Finished false after Done closed")
	}
}

// TestIdleConnStructFitsItsBudget guards the sizes that decide most of
// what an idle Conn costs: 1024 bytes for the Conn and 128 for its CUBIC
// state (allocation size classes).
func TestIdleConnStructFitsItsBudget(t *testing.T) {
	// Go puts an 8-byte header before objects over 512 bytes that hold
	// pointers: 1016 bytes make 1024.
	if n := unsafe.Sizeof(conn{}); n > 1016 {
		t.Errorf("conn is %d bytes, budget 1016 (the 1024 size class with the allocation header)", n)
	}
	if n := unsafe.Sizeof(cubic{}); n > 128 {
		t.Errorf("cubic is %d bytes, budget 128", n)
	}
}
