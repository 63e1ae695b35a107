package reliable

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/internal/netsim"
	"github.com/ipv8/go-ipv8/security"
	"github.com/ipv8/go-ipv8/transport"
)

func lanPair(t *testing.T, cfg Config) (*pair, *simNet) {
	sn := newSimNet(t, 7, netsim.Link{Latency: time.Millisecond}, netsim.Link{Latency: time.Millisecond})
	return connect(t, sn.pcC, sn.pcS, cfg, cfg, plainPayload), sn
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestThousandConcurrentStreamsOnOneSession(t *testing.T) {
	p, _ := lanPair(t, Config{})
	const streams = 1000
	ctx := ctxT(t, 2*time.Minute)
	// Server: echo every stream back.
	go func() {
		for {
			s, err := p.server.AcceptStream(ctx)
			if err != nil {
				return
			}
			go func() {
				io.Copy(s, s)
				s.CloseWrite()
			}()
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := p.client.OpenStream(ctx, "/test/echo/1")
			if err != nil {
				errs <- err
				return
			}
			msg := bytes.Repeat([]byte(fmt.Sprintf("stream %d|", i)), 300)
			go func() {
				s.Write(msg)
				s.CloseWrite()
			}()
			got, err := io.ReadAll(s)
			if err != nil {
				errs <- fmt.Errorf("stream %d: %w", i, err)
				return
			}
			if !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("stream %d: echo of %d bytes differs (got %d)", i, len(msg), len(got))
			}
			s.Close()
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Every stream finished: none is left in either connection's table.
	waitFor(t, func() bool { return streamCount(p.client) == 0 && streamCount(p.server) == 0 },
		"finished streams are forgotten")
}

func streamCount(c transport.Conn) int {
	cc := c.(*conn)
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return len(cc.streams)
}

func waitFor(t *testing.T, f func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStreamOpenCarriesProtocolAndFirstDataWithoutRoundTrip(t *testing.T) {
	// 200 ms RTT: a reply within 1.5 RTT of OpenStream proves that the
	// protocol and the request travelled in the first packet.
	link := netsim.Link{Latency: 50 * time.Millisecond}
	sn := newSimNet(t, 8, link, link)
	p := connect(t, sn.pcC, sn.pcS, Config{}, Config{}, plainPayload)
	ctx := ctxT(t, 30*time.Second)
	// Let the session settle (the server saw the client's first packet).
	time.Sleep(500 * time.Millisecond)
	go func() {
		s, err := p.server.AcceptStream(ctx)
		if err != nil {
			return
		}
		if s.Protocol() != "/test/rpc/1" {
			s.Reset(transport.CodeProtocolNotSupported)
			return
		}
		buf := make([]byte, 4)
		io.ReadFull(s, buf)
		s.Write(append(buf, '!'))
		s.Close()
	}()
	start := time.Now()
	s, err := p.client.OpenStream(ctx, "/test/rpc/1")
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("ping"))
	got, err := io.ReadAll(s)
	elapsed := time.Since(start)
	if err != nil || string(got) != "ping!" {
		t.Fatalf("got %q, %v", got, err)
	}
	if elapsed > 300*time.Millisecond {
		t.Fatalf("request/response took %v on a 200 ms RTT path: more than one round trip", elapsed)
	}
	t.Logf("open + request + response in %v (RTT 200 ms)", elapsed)
}

func TestUnsupportedProtocolResetSurfacesAsErrProtocolNotSupported(t *testing.T) {
	p, _ := lanPair(t, Config{})
	ctx := ctxT(t, 20*time.Second)
	go func() {
		s, err := p.server.AcceptStream(ctx)
		if err == nil {
			s.Reset(transport.CodeProtocolNotSupported)
		}
	}()
	s, err := p.client.OpenStream(ctx, "/nobody/serves/this")
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("hello?"))
	_, err = s.Read(make([]byte, 10))
	if !errors.Is(err, transport.ErrProtocolNotSupported) {
		t.Fatalf("read error %v, want ErrProtocolNotSupported", err)
	}
	var se *transport.StreamError
	if !errors.As(err, &se) || se.Protocol != "/nobody/serves/this" || !se.Remote {
		t.Fatalf("stream error %#v lacks the protocol or the remote flag", err)
	}
	// The write side fails too (STOP_SENDING), once it has arrived.
	waitFor(t, func() bool {
		_, err := s.Write([]byte("x"))
		return errors.Is(err, transport.ErrProtocolNotSupported)
	}, "write fails after the reset")
}

func TestResetFailsRemoteReadAndWriteWithCode(t *testing.T) {
	p, _ := lanPair(t, Config{})
	ctx := ctxT(t, 20*time.Second)
	accepted := make(chan transport.Stream, 1)
	go func() {
		s, err := p.server.AcceptStream(ctx)
		if err == nil {
			accepted <- s
		}
	}()
	s, _ := p.client.OpenStream(ctx, "/test/reset/1")
	s.Write([]byte("data"))
	ss := <-accepted
	buf := make([]byte, 4)
	if _, err := io.ReadFull(ss, buf); err != nil {
		t.Fatal(err)
	}
	s.Reset(0x1234)
	var se *transport.StreamError
	_, err := ss.Read(buf)
	if !errors.As(err, &se) || se.Code != 0x1234 || !se.Remote || !errors.Is(err, transport.ErrStreamReset) {
		t.Fatalf("remote read: %v", err)
	}
	waitFor(t, func() bool {
		_, err := ss.Write([]byte("x"))
		return errors.As(err, &se) && se.Code == 0x1234
	}, "remote write fails with the reset code")
	if _, err := s.Write([]byte("x")); !errors.As(err, &se) || se.Remote {
		t.Fatalf("local write after Reset: %v", err)
	}
}

func TestCloseReadStopsRemoteWriter(t *testing.T) {
	p, _ := lanPair(t, Config{})
	ctx := ctxT(t, 20*time.Second)
	accepted := make(chan transport.Stream, 1)
	go func() {
		s, err := p.server.AcceptStream(ctx)
		if err == nil {
			accepted <- s
		}
	}()
	s, _ := p.client.OpenStream(ctx, "/test/closeread/1")
	s.Write([]byte("hi"))
	ss := <-accepted
	ss.CloseRead()
	if _, err := ss.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after CloseRead succeeded")
	}
	// The client keeps writing until STOP_SENDING arrives; then it fails.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.Write(make([]byte, 1000))
		if err != nil {
			if !errors.Is(err, transport.ErrStreamReset) {
				t.Fatalf("write error %v, want a stream reset", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writes never failed after the remote's CloseRead")
		}
		time.Sleep(time.Millisecond)
	}
	// The other direction still works.
	ss.Write([]byte("reply"))
	ss.CloseWrite()
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "reply" {
		t.Fatalf("reverse direction: %q, %v", got, err)
	}
}

func TestReadDeadlineExpires(t *testing.T) {
	p, _ := lanPair(t, Config{})
	ctx := ctxT(t, 20*time.Second)
	s, _ := p.client.OpenStream(ctx, "/test/deadline/1")
	s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err := s.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%v is not a net.Error timeout", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 5*time.Second {
		t.Fatalf("deadline fired after %v", d)
	}
	// Clearing the deadline lets the next read wait again.
	s.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { _, err := s.Read(make([]byte, 1)); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("read returned %v with no deadline and no data", err)
	case <-time.After(100 * time.Millisecond):
	}
	s.SetReadDeadline(time.Now())
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("moving the deadline to now: %v", err)
	}
}

func TestDatagramsArriveAndOversizeIsRefused(t *testing.T) {
	p, _ := lanPair(t, Config{})
	ctx := ctxT(t, 20*time.Second)
	if err := p.client.SendDatagram(make([]byte, p.client.MaxDatagramSize()+1)); !errors.Is(err, transport.ErrDatagramTooLarge) {
		t.Fatalf("oversize datagram: %v", err)
	}
	max := make([]byte, p.client.MaxDatagramSize())
	for i := range max {
		max[i] = byte(i)
	}
	if err := p.client.SendDatagram(max); err != nil {
		t.Fatal(err)
	}
	p.client.SendDatagram([]byte("small"))
	got1, err := p.server.ReceiveDatagram(ctx)
	if err != nil || !bytes.Equal(got1, max) {
		t.Fatalf("first datagram: %d bytes, %v", len(got1), err)
	}
	got2, err := p.server.ReceiveDatagram(ctx)
	if err != nil || string(got2) != "small" {
		t.Fatalf("second datagram %q, %v", got2, err)
	}
}

func TestCloseWithErrorReachesRemote(t *testing.T) {
	p, _ := lanPair(t, Config{})
	ctx := ctxT(t, 20*time.Second)
	s, _ := p.client.OpenStream(ctx, "/test/close/1")
	s.Write([]byte("x"))
	ss, err := p.server.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.client.CloseWithError(0x200, "going away")
	select {
	case <-p.server.Done():
	case <-ctx.Done():
		t.Fatal("remote conn did not end")
	}
	var ce *transport.ConnError
	if _, err := p.server.AcceptStream(ctx); !errors.As(err, &ce) || ce.Code != 0x200 || ce.Reason != "going away" || !ce.Remote {
		t.Fatalf("remote AcceptStream: %v", err)
	}
	if _, err := ss.Read(make([]byte, 10)); !errors.Is(err, transport.ErrConnClosed) {
		// The byte already received may come first.
		if _, err = ss.Read(make([]byte, 10)); !errors.Is(err, transport.ErrConnClosed) {
			t.Fatalf("remote stream read: %v", err)
		}
	}
	if _, err := s.Write([]byte("y")); !errors.As(err, &ce) || ce.Remote {
		t.Fatalf("local write after close: %v", err)
	}
}

func TestIdleTimeoutEndsConnWhenRemoteVanishes(t *testing.T) {
	cfg := Config{IdleTimeout: 300 * time.Millisecond, KeepAlive: 100 * time.Millisecond}
	p, _ := lanPair(t, cfg)
	// The server's side disappears without a word.
	p.es.Close()
	select {
	case <-p.client.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("conn did not time out")
	}
	if _, err := p.client.OpenStream(context.Background(), "/x"); !errors.Is(err, transport.ErrConnClosed) {
		t.Fatalf("open after idle timeout: %v", err)
	}
}

func TestKeepAliveHoldsIdleConnOpen(t *testing.T) {
	cfg := Config{IdleTimeout: time.Second, KeepAlive: 200 * time.Millisecond}
	p, _ := lanPair(t, cfg)
	select {
	case <-p.client.Done():
		_, err := p.client.AcceptStream(context.Background())
		t.Fatalf("an idle conn with keep-alives ended: %v", err)
	case <-p.server.Done():
		_, err := p.server.AcceptStream(context.Background())
		t.Fatalf("an idle conn with keep-alives ended: %v", err)
	case <-time.After(3 * time.Second):
	}
}

func TestResetOfStreamNeverOpenedLeavesNoState(t *testing.T) {
	p, _ := lanPair(t, Config{})
	sc := p.server.(*conn)
	// The remote resets stream 0 before any of its data (and so its
	// protocol) arrived: the server must not keep the stream, nor count it
	// against the remote's stream limit forever.
	pkt := PacketHeader{PacketNumber: 1000}.Append(nil)
	pkt = resetStreamFrame{id: 0, code: 7, finalSize: 0}.append(pkt)
	sc.receive(pkt)
	if n := streamCount(p.server); n != 0 {
		t.Fatalf("%d streams left after a reset of a never-opened stream", n)
	}
	sc.mu.Lock()
	done := sc.remoteDone
	sc.mu.Unlock()
	if done != 1 {
		t.Fatalf("remote streams finished: %d, want 1 (its slot is given back)", done)
	}
}

// shrinkingSession is a memSession whose payload limit drops mid-transfer
// (its path moved behind a relay that adds a header).
type shrinkingSession struct {
	*memSession
	limit atomic.Int64
}

func (s *shrinkingSession) MaxPayload() int { return int(s.limit.Load()) }
func (s *shrinkingSession) Send(b []byte) error {
	if len(b) > s.MaxPayload() {
		return security.ErrTooLarge
	}
	return s.memSession.Send(b)
}

func TestPacketsFollowTheSessionsShrinkingPayloadLimit(t *testing.T) {
	a, b := memPair(newKey(t), newKey(t))
	ss := &shrinkingSession{memSession: a}
	ss.limit.Store(1400)
	ma, mb := New(Config{}), New(Config{})
	defer ma.Close()
	defer mb.Close()
	ca, _ := ma.NewConn(ss, true)
	cb, _ := mb.NewConn(b, false)
	go func() {
		for ca.Stats().BytesSent < 1<<20 {
			time.Sleep(time.Millisecond)
		}
		ss.limit.Store(1000)
	}()
	transfer(t, &pair{client: ca, server: cb}, 8<<20, 9, time.Minute)
	cc := ca.(*conn)
	cc.mu.Lock()
	got := cc.maxPacket
	cc.mu.Unlock()
	if got != 1000 {
		t.Fatalf("packets are %d bytes after the limit dropped to 1000", got)
	}
}
