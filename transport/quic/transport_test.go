package quic

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocol"
	"github.com/ipv8/go-ipv8/transport"
)

func TestDialAuthenticatesBothSides(t *testing.T) {
	a, b := newNode(t, Config{}), listeningNode(t, Config{})
	ca, cb := connect(t, a, b)

	if ca.RemotePeer() != b.id() || ca.LocalPeer() != a.id() {
		t.Errorf("dialler sees %s→%s, want %s→%s", ca.LocalPeer(), ca.RemotePeer(), a.id(), b.id())
	}
	if cb.RemotePeer() != a.id() || cb.LocalPeer() != b.id() {
		t.Errorf("listener sees %s→%s, want %s→%s", cb.LocalPeer(), cb.RemotePeer(), b.id(), a.id())
	}
	if !ca.RemotePublicKey().Equal(b.key.Public()) || !cb.RemotePublicKey().Equal(a.key.Public()) {
		t.Error("RemotePublicKey is not the remote's native public key")
	}
	if ca.Transport() != "quic" || cb.Transport() != "quic" {
		t.Errorf("Transport() = %q, %q", ca.Transport(), cb.Transport())
	}
	if !ca.RemoteMultiaddr().Equal(b.ln.Multiaddr()) {
		t.Errorf("dialler's RemoteMultiaddr %s, want %s", ca.RemoteMultiaddr(), b.ln.Multiaddr())
	}
	if !cb.RemoteMultiaddr().Equal(ca.LocalMultiaddr()) {
		t.Errorf("listener's RemoteMultiaddr %s, dialler's LocalMultiaddr %s", cb.RemoteMultiaddr(), ca.LocalMultiaddr())
	}

	// The handshake is libp2p's: TLS 1.3, ALPN "libp2p", one certificate.
	st := ca.(*conn).qc.ConnectionState().TLS
	if st.Version != tls.VersionTLS13 || st.NegotiatedProtocol != "libp2p" || len(st.PeerCertificates) != 1 {
		t.Errorf("TLS version %#x, ALPN %q, %d certificates", st.Version, st.NegotiatedProtocol, len(st.PeerCertificates))
	}
}

func TestListenerMultiaddrIsBoundQUICAddress(t *testing.T) {
	b := listeningNode(t, Config{})
	want := fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", b.pconn.LocalAddr().(*net.UDPAddr).Port)
	if got := b.ln.Multiaddr().String(); got != want {
		t.Errorf("Multiaddr() = %s, want %s", got, want)
	}
	if !b.tr.CanDial(b.ln.Multiaddr()) {
		t.Error("cannot dial its own listen address")
	}
}

func TestDialUnderWrongIDIsRefused(t *testing.T) {
	a, b := newNode(t, Config{}), listeningNode(t, Config{})
	impostor, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	wanted := impostor.ID()

	accepted := make(chan transport.Conn, 1)
	actx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		c, err := b.ln.Accept(actx)
		if err == nil {
			accepted <- c
		}
	}()

	c, err := a.tr.Dial(testCtx(t), b.ln.Multiaddr(), wanted)
	if err == nil {
		c.Close()
		t.Fatal("dial under the wrong peer ID succeeded")
	}
	t.Logf("dial error: %v", err)
	if !errors.Is(err, transport.ErrWrongPeer) {
		t.Fatalf("error %v does not match ErrWrongPeer", err)
	}
	if !strings.Contains(err.Error(), wanted.String()) || !strings.Contains(err.Error(), b.id().String()) {
		t.Errorf("error %q does not name both the dialled %s and the actual %s", err, wanted, b.id())
	}
	// The dialler aborted inside the handshake, before its Finished: the
	// listener never completes a connection, so never sees a stream.
	select {
	case c := <-accepted:
		t.Fatalf("listener accepted a connection from %s", c.RemotePeer())
	case <-time.After(time.Second):
	}
}

// echo serves one stream on c: it reads to EOF and writes back what it read
// with prefix in front, then closes.
func echo(t testing.TB, c transport.Conn, prefix string) <-chan protocol.ID {
	seen := make(chan protocol.ID, 1)
	go func() {
		s, err := c.AcceptStream(testCtx(t))
		if err != nil {
			t.Errorf("accept stream: %v", err)
			close(seen)
			return
		}
		seen <- s.Protocol()
		data, err := io.ReadAll(s)
		if err != nil {
			t.Errorf("server read: %v", err)
		}
		if _, err := s.Write(append([]byte(prefix), data...)); err != nil {
			t.Errorf("server write: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("server close: %v", err)
		}
	}()
	return seen
}

func TestStreamCarriesProtocolAndDataBothWaysWithHalfClose(t *testing.T) {
	a, b := newNode(t, Config{}), listeningNode(t, Config{})
	ca, cb := connect(t, a, b)
	const proto = protocol.ID("/test/echo/1")
	seen := echo(t, cb, "re: ")

	s, err := ca.OpenStream(testCtx(t), proto)
	if err != nil {
		t.Fatal(err)
	}
	if s.Protocol() != proto || s.Conn() != ca {
		t.Errorf("opener's stream: protocol %q, conn %v", s.Protocol(), s.Conn())
	}
	if _, err := s.Write([]byte("hello ")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// After its own CloseWrite the opener still reads the reply to EOF.
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatalf("client read: %v", err)
	}
	if string(got) != "re: hello world" {
		t.Errorf("reply %q", got)
	}
	if p := <-seen; p != proto {
		t.Errorf("acceptor saw protocol %q, want %q", p, proto)
	}
	if err := s.Close(); err != nil {
		t.Errorf("close after both sides finished: %v", err)
	}
	if s.LocalAddr().String() != a.pconn.LocalAddr().String() || s.RemoteAddr().String() != b.pconn.LocalAddr().String() {
		t.Errorf("stream addresses %s→%s", s.LocalAddr(), s.RemoteAddr())
	}
}

func TestLargeTransferIsByteExact(t *testing.T) {
	a, b := newNode(t, Config{}), listeningNode(t, Config{})
	ca, cb := connect(t, a, b)
	seen := echo(t, cb, "")
	payload := make([]byte, 3<<20+17)
	for i := range payload {
		payload[i] = byte(i*7 + i>>11)
	}
	s, err := ca.OpenStream(testCtx(t), "/test/bulk/1")
	if err != nil {
		t.Fatal(err)
	}
	s.SetDeadline(time.Now().Add(testTimeout))
	errc := make(chan error, 1)
	go func() {
		_, err := s.Write(payload)
		if err == nil {
			err = s.CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("echoed %d bytes, differ from the %d sent", len(got), len(payload))
	}
	<-seen
}

func TestOpenerThatReadsFirstStillAnnouncesProtocol(t *testing.T) {
	a, b := newNode(t, Config{}), listeningNode(t, Config{})
	ca, cb := connect(t, a, b)
	const proto = protocol.ID("/test/server-speaks-first/1")
	go func() {
		s, err := cb.AcceptStream(testCtx(t))
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		s.Write([]byte(s.Protocol()))
		s.Close()
	}()
	s, err := ca.OpenStream(testCtx(t), proto)
	if err != nil {
		t.Fatal(err)
	}
	s.SetReadDeadline(time.Now().Add(testTimeout))
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(proto) {
		t.Errorf("server saw protocol %q, want %q", got, proto)
	}
}

func TestStreamClosedWithoutDataArrivesEmpty(t *testing.T) {
	a, b := newNode(t, Config{}), listeningNode(t, Config{})
	ca, cb := connect(t, a, b)
	s, err := ca.OpenStream(testCtx(t), "/test/empty/1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	r, err := cb.AcceptStream(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(r)
	if err != nil || len(data) != 0 || r.Protocol() != "/test/empty/1" {
		t.Errorf("got %q, %v, protocol %q", data, err, r.Protocol())
	}
}

func TestProtocolNotSupportedResetSurfacesOnOpener(t *testing.T) {
	a, b := newNode(t, Config{}), listeningNode(t, Config{})
	ca, cb := connect(t, a, b)
	const proto = protocol.ID("/test/not-served/1")
	go func() {
		s, err := cb.AcceptStream(testCtx(t))
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		s.Reset(transport.CodeProtocolNotSupported) // what the Host does
	}()
	s, err := ca.OpenStream(testCtx(t), proto)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("request")); err != nil {
		t.Fatalf("first write: %v", err)
	}
	s.SetReadDeadline(time.Now().Add(testTimeout))
	_, err = s.Read(make([]byte, 10))
	checkNotSupported(t, "Read", err, proto)

	// Writes fail the same way once the STOP_SENDING has arrived (it left
	// with the RESET_STREAM that failed the Read).
	deadline := time.Now().Add(testTimeout)
	for {
		_, err = s.Write([]byte("more"))
		if err != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	checkNotSupported(t, "Write", err, proto)
	checkNotSupported(t, "Close", s.Close(), proto)
}

func checkNotSupported(t *testing.T, op string, err error, proto protocol.ID) {
	t.Helper()
	if !errors.Is(err, transport.ErrProtocolNotSupported) || !errors.Is(err, transport.ErrStreamReset) {
		t.Fatalf("%s error %v does not match ErrProtocolNotSupported and ErrStreamReset", op, err)
	}
	var se *transport.StreamError
	if !errors.As(err, &se) || se.Protocol != proto || !se.Remote || se.Code != transport.CodeProtocolNotSupported {
		t.Fatalf("%s error %#v, want a remote *StreamError for %q", op, err, proto)
	}
	if !strings.Contains(err.Error(), string(proto)) {
		t.Errorf("%s error %q does not name the protocol", op, err)
	}
}

func TestResetCarriesApplicationCodeBothWays(t *testing.T) {
	a, b := newNode(t, Config{}), listeningNode(t, Config{})
	ca, cb := connect(t, a, b)
	s, err := ca.OpenStream(testCtx(t), "/test/reset/1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	r, err := cb.AcceptStream(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reset(0x1234); err != nil {
		t.Fatal(err)
	}
	// Locally: a local StreamError.
	_, err = s.Read(make([]byte, 1))
	var se *transport.StreamError
	if !errors.As(err, &se) || se.Remote || se.Code != 0x1234 {
		t.Errorf("local read after Reset: %v", err)
	}
	// Remotely: the code, marked remote, with the protocol.
	r.SetReadDeadline(time.Now().Add(testTimeout))
	_, err = io.ReadAll(r)
	if !errors.As(err, &se) || !se.Remote || se.Code != 0x1234 || se.Protocol != "/test/reset/1" {
		t.Errorf("remote read after Reset: %v", err)
	}
	if errors.Is(err, transport.ErrProtocolNotSupported) {
		t.Error("a reset with an application code matches ErrProtocolNotSupported")
	}
}

func TestCloseReadStopsRemoteWriter(t *testing.T) {
	a, b := newNode(t, Config{}), listeningNode(t, Config{})
	ca, cb := connect(t, a, b)
	s, err := ca.OpenStream(testCtx(t), "/test/closeread/1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	r, err := cb.AcceptStream(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CloseRead(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testTimeout)
	for {
		_, err = r.Write([]byte("unwanted"))
		if err != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	var se *transport.StreamError
	if !errors.As(err, &se) || !se.Remote || se.Code != transport.CodeNoError {
		t.Errorf("remote write after CloseRead: %v", err)
	}
	// The opener's write direction is still open.
	if _, err := s.Write([]byte("still")); err != nil {
		t.Errorf("write after CloseRead: %v", err)
	}
}

func TestManyConcurrentStreams(t *testing.T) {
	a, b := newNode(t, Config{}), listeningNode(t, Config{})
	ca, cb := connect(t, a, b)
	const n = 40
	go func() {
		for range n {
			s, err := cb.AcceptStream(testCtx(t))
			if err != nil {
				t.Errorf("accept: %v", err)
				return
			}
			go func() {
				data, _ := io.ReadAll(s)
				s.Write(append([]byte(s.Protocol()+":"), data...))
				s.Close()
			}()
		}
	}()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			p := protocol.ID(fmt.Sprintf("/test/many/%d", i))
			s, err := ca.OpenStream(testCtx(t), p)
			if err != nil {
				t.Errorf("open: %v", err)
				return
			}
			s.SetDeadline(time.Now().Add(testTimeout))
			msg := bytes.Repeat([]byte{byte(i)}, 1000*i)
			s.Write(msg)
			s.CloseWrite()
			got, err := io.ReadAll(s)
			if err != nil || !bytes.Equal(got, append([]byte(p+":"), msg...)) {
				t.Errorf("stream %d: %d bytes, %v", i, len(got), err)
			}
		})
	}
	wg.Wait()
}

func TestAcceptStreamSkipsMalformedHeader(t *testing.T) {
	a, b := newNode(t, Config{}), listeningNode(t, Config{})
	ca, cb := connect(t, a, b)
	ctx := testCtx(t)
	// A raw QUIC stream whose header claims an empty protocol ID.
	bad, err := ca.(*conn).qc.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bad.Write([]byte{0x00, 'x'})
	good, err := ca.OpenStream(ctx, "/test/good/1")
	if err != nil {
		t.Fatal(err)
	}
	good.Write([]byte("ok"))

	s, err := cb.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Protocol() != "/test/good/1" {
		t.Errorf("accepted %q, want the good stream", s.Protocol())
	}
	bad.SetReadDeadline(time.Now().Add(testTimeout))
	_, err = bad.Read(make([]byte, 1))
	if err == nil || !strings.Contains(err.Error(), "error code 1") {
		t.Errorf("malformed stream not reset with CodeProtocolNotSupported: %v", err)
	}
}

func TestAcceptStreamResetsStreamWhoseHeaderNeverArrives(t *testing.T) {
	a, b := newNode(t, Config{}), listeningNode(t, Config{StreamHeaderTimeout: 200 * time.Millisecond})
	ca, cb := connect(t, a, b)
	ctx := testCtx(t)
	stalled, err := ca.(*conn).qc.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stalled.Write([]byte{0x10, '/'}) // announces 16 bytes, sends 1
	acc := make(chan error, 1)
	go func() {
		_, err := cb.AcceptStream(ctx)
		acc <- err
	}()
	stalled.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := stalled.Read(make([]byte, 1)); err == nil || !strings.Contains(err.Error(), "error code 1") {
		t.Errorf("stalled stream not reset: %v", err)
	}
	select {
	case err := <-acc:
		t.Errorf("AcceptStream returned %v for a stalled stream", err)
	default:
	}
}

func TestDatagramsRoundTrip(t *testing.T) {
	a, b := newNode(t, Config{}), listeningNode(t, Config{})
	ca, cb := connect(t, a, b)
	max := ca.MaxDatagramSize()
	if max < 1100 || max > 1452 {
		t.Fatalf("MaxDatagramSize() = %d, want the QUIC limit of a ~1280-1452-byte packet", max)
	}
	ctx := testCtx(t)
	msg := bytes.Repeat([]byte("d"), max)
	got := make(chan []byte, 1)
	go func() {
		b, err := cb.ReceiveDatagram(ctx)
		if err == nil {
			got <- b
		}
	}()
	// Datagrams are unreliable: resend until one arrives.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		if err := ca.SendDatagram(msg); err != nil {
			t.Fatalf("send: %v", err)
		}
		select {
		case b := <-got:
			if !bytes.Equal(b, msg) {
				t.Fatalf("received %d bytes, sent %d", len(b), len(msg))
			}
			done = true
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("no datagram arrived")
		}
	}
	err := ca.SendDatagram(make([]byte, max+1))
	if !errors.Is(err, transport.ErrDatagramTooLarge) {
		t.Errorf("oversized datagram: %v, want ErrDatagramTooLarge", err)
	}
}

func TestStreamDeadlines(t *testing.T) {
	a := newNode(t, Config{})
	// A small receive window, so that a writer the reader ignores blocks.
	b := listeningNode(t, Config{InitialStreamReceiveWindow: 64 << 10, MaxStreamReceiveWindow: 64 << 10})
	ca, cb := connect(t, a, b)
	s, err := ca.OpenStream(testCtx(t), "/test/deadline/1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.AcceptStream(testCtx(t)); err != nil {
		t.Fatal(err)
	}

	s.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	start := time.Now()
	_, err = s.Read(make([]byte, 1))
	checkTimeout(t, "Read", err, time.Since(start))

	s.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	start = time.Now()
	n, err := s.Write(make([]byte, 4<<20))
	checkTimeout(t, "Write", err, time.Since(start))
	if n >= 4<<20 {
		t.Errorf("blocked Write reported %d bytes written", n)
	}

	// Clearing the deadline makes the stream usable again.
	s.SetDeadline(time.Time{})
	if _, err := s.Write([]byte("y")); err != nil {
		t.Errorf("write after clearing the deadline: %v", err)
	}
}

func checkTimeout(t *testing.T, op string, err error, took time.Duration) {
	t.Helper()
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%s past its deadline: %v, want a timeout matching os.ErrDeadlineExceeded", op, err)
	}
	if took > 5*time.Second {
		t.Errorf("%s took %v to hit its deadline", op, took)
	}
}

func TestStatsAreMeasuredAfterTraffic(t *testing.T) {
	a, b := newNode(t, Config{}), listeningNode(t, Config{})
	ca, cb := connect(t, a, b)
	seen := echo(t, cb, "")
	s, err := ca.OpenStream(testCtx(t), "/test/stats/1")
	if err != nil {
		t.Fatal(err)
	}
	s.Write(make([]byte, 100<<10))
	s.CloseWrite()
	if _, err := io.ReadAll(s); err != nil {
		t.Fatal(err)
	}
	<-seen
	st := ca.Stats()
	if st.SmoothedRTT <= 0 || st.MinRTT <= 0 || st.LatestRTT <= 0 {
		t.Errorf("RTTs not measured: %+v", st)
	}
	if st.CongestionWindow == 0 {
		t.Error("no congestion window")
	}
	if st.BytesSent < 100<<10 || st.BytesReceived < 100<<10 || st.PacketsSent == 0 || st.PacketsReceived == 0 {
		t.Errorf("traffic not counted: %+v", st)
	}
	if st.Path != transport.PathDirect {
		t.Errorf("path %v", st.Path)
	}
	if st.Opened.IsZero() || st.Opened.After(time.Now()) {
		t.Errorf("Opened = %v", st.Opened)
	}
}

func TestConnCloseUnblocksEverythingAndLaterCallsFail(t *testing.T) {
	a, b := newNode(t, Config{}), listeningNode(t, Config{})
	ca, cb := connect(t, a, b)
	ctx := testCtx(t)
	s, err := ca.OpenStream(ctx, "/test/close/1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	rs, err := cb.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rs, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}

	// Blocked on the closing side: a stream Read, AcceptStream,
	// ReceiveDatagram. Blocked on the remote: a stream Read, AcceptStream.
	errs := make(chan error, 5)
	go func() { _, err := s.Read(make([]byte, 1)); errs <- err }()
	go func() { _, err := ca.AcceptStream(ctx); errs <- err }()
	go func() { _, err := ca.ReceiveDatagram(ctx); errs <- err }()
	go func() { _, err := rs.Read(make([]byte, 10)); errs <- err }()
	go func() { _, err := cb.AcceptStream(ctx); errs <- err }()
	time.Sleep(50 * time.Millisecond)

	if err := ca.CloseWithError(0x123, "bye"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		select {
		case err := <-errs:
			if !errors.Is(err, transport.ErrConnClosed) {
				t.Errorf("blocked call %d returned %v, want ErrConnClosed", i, err)
			}
		case <-time.After(testTimeout):
			t.Fatal("a blocked call did not return after Close")
		}
	}
	for name, c := range map[string]transport.Conn{"local": ca, "remote": cb} {
		select {
		case <-c.Done():
		case <-time.After(testTimeout):
			t.Fatalf("%s Done not closed", name)
		}
	}
	// The remote learns the code and reason.
	_, err = cb.OpenStream(ctx, "/test/after/1")
	var ce *transport.ConnError
	if !errors.As(err, &ce) || !ce.Remote || ce.Code != 0x123 || ce.Reason != "bye" {
		t.Errorf("remote OpenStream after close: %v", err)
	}
	// Later calls fail locally.
	if _, err := ca.OpenStream(ctx, "/test/after/1"); !errors.As(err, &ce) || ce.Remote || ce.Code != 0x123 {
		t.Errorf("local OpenStream after close: %v", err)
	}
	if _, err := s.Write([]byte("y")); !errors.Is(err, transport.ErrConnClosed) {
		t.Errorf("Write after close: %v", err)
	}
	if err := ca.SendDatagram([]byte("y")); !errors.Is(err, transport.ErrConnClosed) {
		t.Errorf("SendDatagram after close: %v", err)
	}
	if n := ca.MaxDatagramSize(); n != 0 {
		t.Errorf("MaxDatagramSize after close = %d", n)
	}
}

func TestTransportCloseClosesConnsAndRefusesNewWork(t *testing.T) {
	a, b := newNode(t, Config{}), listeningNode(t, Config{})
	ca, cb := connect(t, a, b)
	ctx := testCtx(t)
	blocked := make(chan error, 2)
	go func() { _, err := b.ln.Accept(ctx); blocked <- err }()
	go func() { _, err := cb.AcceptStream(ctx); blocked <- err }()
	time.Sleep(50 * time.Millisecond)

	if err := b.tr.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case err := <-blocked:
			if !errors.Is(err, transport.ErrTransportClosed) {
				t.Errorf("blocked call returned %v, want ErrTransportClosed", err)
			}
		case <-time.After(testTimeout):
			t.Fatal("a blocked call did not return after Transport.Close")
		}
	}
	// The remote was told: its conn ends with CodeConnClosing.
	select {
	case <-ca.Done():
	case <-time.After(testTimeout):
		t.Fatal("remote conn still open after Transport.Close")
	}
	var ce *transport.ConnError
	if _, err := ca.OpenStream(ctx, "/x/1"); !errors.As(err, &ce) || !ce.Remote || ce.Code != transport.CodeConnClosing {
		t.Errorf("remote OpenStream: %v", err)
	}
	if _, err := cb.OpenStream(ctx, "/x/1"); !errors.Is(err, transport.ErrConnClosed) || !errors.Is(err, transport.ErrTransportClosed) {
		t.Errorf("local OpenStream: %v, want ErrConnClosed and ErrTransportClosed", err)
	}
	if _, err := b.tr.Dial(ctx, a.tr.laddr, a.id()); !errors.Is(err, transport.ErrTransportClosed) {
		t.Errorf("Dial: %v", err)
	}
	if _, err := b.tr.Listen(); !errors.Is(err, transport.ErrTransportClosed) {
		t.Errorf("Listen: %v", err)
	}
	if _, err := b.ln.Accept(ctx); !errors.Is(err, transport.ErrTransportClosed) {
		t.Errorf("Accept: %v", err)
	}
	if err := b.tr.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// The socket belongs to its owner and is still open.
	if _, err := b.pconn.WriteTo([]byte{0}, a.pconn.LocalAddr()); err != nil {
		t.Errorf("pconn closed by the transport: %v", err)
	}
}

func TestCancelledContextsReturnPromptly(t *testing.T) {
	a := newNode(t, Config{})
	b := listeningNode(t, Config{MaxIncomingStreams: 1})
	ca, cb := connect(t, a, b)

	// A silent address: a socket that never answers.
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	sinkAddr, _ := transport.FromAddrPort(sink.LocalAddr().(*net.UDPAddr).AddrPort(), "/quic-v1")

	// The second OpenStream waits for stream credit the remote never gives
	// (MaxIncomingStreams 1, the first stream stays open).
	first, err := ca.OpenStream(testCtx(t), "/test/1")
	if err != nil {
		t.Fatal(err)
	}
	first.Write([]byte("x"))

	cases := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Dial", func(ctx context.Context) error { _, err := a.tr.Dial(ctx, sinkAddr, b.id()); return err }},
		{"Accept", func(ctx context.Context) error { _, err := b.ln.Accept(ctx); return err }},
		{"AcceptStream", func(ctx context.Context) error { _, err := ca.AcceptStream(ctx); return err }},
		{"OpenStream", func(ctx context.Context) error { _, err := ca.OpenStream(ctx, "/test/2"); return err }},
		{"ReceiveDatagram", func(ctx context.Context) error { _, err := cb.ReceiveDatagram(ctx); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			start := time.Now()
			err := tc.call(ctx)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("returned %v, want context.Canceled", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("returned %v after the cancel", d)
			}
		})
	}
}

func TestCanDialOnlyQUICv1Addresses(t *testing.T) {
	tr := newNode(t, Config{}).tr
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"/ip4/1.2.3.4/udp/4242/quic-v1", true},
		{"/ip6/::1/udp/4242/quic-v1", true},
		{"/ip4/1.2.3.4/udp/4242", false},
		{"/ip4/1.2.3.4/udp/4242/quic", false},
		{"/ip4/1.2.3.4/udp/4242/ipv8", false},
		{"/ip4/1.2.3.4/tcp/4242", false},
		{"/ip4/1.2.3.4/udp/0/quic-v1", false},
		{"/ip4/1.2.3.4/udp/4242/quic-v1/p2p/12D3KooWM6CgA9iBFZmcYAHA6A2qvbAxqfkmrYiRQuz3XEsk4Ksv", false},
		{"/dns4/example.com/udp/4242/quic-v1", false},
	} {
		m, err := ma.NewMultiaddr(tc.addr)
		if err != nil {
			t.Fatalf("%s: %v", tc.addr, err)
		}
		if got := tr.CanDial(m); got != tc.ok {
			t.Errorf("CanDial(%s) = %v, want %v", tc.addr, got, tc.ok)
		}
		if !tc.ok {
			if _, err := tr.Dial(testCtx(t), m, tr.LocalPeer()); !errors.Is(err, transport.ErrAddrNotSupported) {
				t.Errorf("Dial(%s): %v, want ErrAddrNotSupported", tc.addr, err)
			}
		}
	}
}

func TestServerRefusesClientWithBadCertificate(t *testing.T) {
	a, b := newNode(t, Config{}), listeningNode(t, Config{})
	// a presents a certificate whose identity signature is broken.
	a.tr.certs.set(mustCert(t, certOpts{identity: a.key, tamperSig: true}))

	accepted := make(chan transport.Conn, 1)
	actx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		c, err := b.ln.Accept(actx)
		if err == nil {
			accepted <- c
		}
	}()
	c, err := a.tr.Dial(testCtx(t), b.ln.Multiaddr(), b.id())
	if err == nil {
		// TLS 1.3 clients finish before the server has checked their
		// certificate; the server's refusal then closes the connection.
		select {
		case <-c.Done():
		case <-time.After(testTimeout):
			t.Fatal("connection with a bad client certificate stays open")
		}
	}
	select {
	case c := <-accepted:
		t.Fatalf("listener accepted %s with a bad certificate", c.RemotePeer())
	case <-time.After(500 * time.Millisecond):
	}
}

func TestClientRefusesServerWithBadCertificate(t *testing.T) {
	for name, opts := range map[string]certOpts{
		"tampered signature": {tamperSig: true},
		"expired":            {notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Hour)},
		"no extension":       {noExtension: true},
	} {
		t.Run(name, func(t *testing.T) {
			a, b := newNode(t, Config{}), listeningNode(t, Config{})
			opts.identity = b.key
			b.tr.certs.set(mustCert(t, opts))
			_, err := a.tr.Dial(testCtx(t), b.ln.Multiaddr(), b.id())
			t.Logf("dial error: %v", err)
			if !errors.Is(err, ErrInvalidCertificate) {
				t.Fatalf("dial: %v, want ErrInvalidCertificate", err)
			}
		})
	}
}

func TestQuicGoKeepsGSOOnUDPConn(t *testing.T) {
	if runtime.GOOS != "linux" || os.Getenv("QUIC_GO_DISABLE_GSO") != "" {
		t.Skip("GSO is a Linux fast path")
	}
	a, b := newNode(t, Config{}), listeningNode(t, Config{})
	ca, cb := connect(t, a, b)
	// The *net.UDPConn reached quic-go unwrapped: it segments with GSO.
	if !ca.(*conn).qc.ConnectionState().GSO || !cb.(*conn).qc.ConnectionState().GSO {
		t.Error("quic-go does not use GSO on the *net.UDPConn")
	}
}

// plainPacketConn hides everything of a *net.UDPConn but net.PacketConn, as
// a user-space demultiplexer's conn would.
type plainPacketConn struct{ net.PacketConn }

func TestWorksOnPlainPacketConn(t *testing.T) {
	mk := func(listen bool) *node {
		key, _ := peer.GenerateKey(nil)
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		tr, err := New(key, plainPacketConn{u}, Config{Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close(); u.Close() })
		n := &node{key: key, pconn: u, tr: tr}
		if listen {
			if n.ln, err = tr.Listen(); err != nil {
				t.Fatal(err)
			}
		}
		return n
	}
	a, b := mk(false), mk(true)
	ca, cb := connect(t, a, b)
	seen := echo(t, cb, "plain: ")
	s, err := ca.OpenStream(testCtx(t), "/test/plain/1")
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("hi"))
	s.CloseWrite()
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "plain: hi" {
		t.Errorf("got %q, %v", got, err)
	}
	<-seen
}

func TestAcceptStreamCancelledWhileHeaderArrives(t *testing.T) {
	a, b := newNode(t, Config{}), listeningNode(t, Config{})
	ca, cb := connect(t, a, b)
	partial, err := ca.(*conn).qc.OpenStreamSync(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	partial.Write([]byte{0x10, '/'}) // announces 16 bytes, sends 1
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err = cb.AcceptStream(ctx)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 3*time.Second {
		t.Errorf("AcceptStream returned %v after %v, want context.Canceled promptly", err, time.Since(start))
	}
	// The half-read stream cannot be handed to anyone: it is reset as
	// cancelled (0x4).
	partial.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := partial.Read(make([]byte, 1)); err == nil || !strings.Contains(err.Error(), "error code 4") {
		t.Errorf("half-read stream: %v, want a reset with code 4", err)
	}
}
