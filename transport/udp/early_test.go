package udp

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/ipv8/go-ipv8/internal/netsim"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocol"
	"github.com/ipv8/go-ipv8/security/noise"
	"github.com/ipv8/go-ipv8/transport"
)

// echoOnce opens a stream, writes one byte and reads it back.
func echoOnce(ctx context.Context, c transport.Conn) error {
	st, err := c.OpenStream(ctx, protocol.ID("/echo/1"))
	if err != nil {
		return err
	}
	defer st.Close()
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	if _, err := st.Write([]byte{0x2a}); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(st, b[:]); err != nil {
		return err
	}
	if b[0] != 0x2a {
		return fmt.Errorf("echo: got %#x", b[0])
	}
	return nil
}

// A Conn from DialEarly carries streams at once: the stream's opening and
// first data go out as 0-RTT packets behind the initiation and the
// responder opens them; the Conn is then the established one a later Dial
// returns.
func TestTransportDialEarlyCarriesFirstStreamInZeroRTT(t *testing.T) {
	// A path with a long delay (100 ms RTT), so that the first stream is
	// written before the handshake can complete, however loaded the
	// machine (on loopback it may complete first).
	env := newRTTEnv(t, 50*time.Millisecond)
	a, b := env.client(t), env.srv
	c, err := a.tr.DialEarly(testCtx(t, 10*time.Second), b.maddr(t), b.id())
	if err != nil {
		t.Fatal(err)
	}
	if c.RemotePeer() != b.id() || c.LocalPeer() != a.id() {
		t.Fatalf("conn %s -> %s", c.LocalPeer(), c.RemotePeer())
	}
	if err := echoOnce(testCtx(t, 10*time.Second), c); err != nil {
		t.Fatal(err)
	}
	if got := a.sec.Stats().EarlySent; got == 0 {
		t.Fatal("nothing was sent as 0-RTT")
	}
	if got := b.sec.Stats().EarlyReceived; got == 0 {
		t.Fatal("the responder opened no 0-RTT packet")
	}
	roundTrip(t, c, randomBytes(1<<20))
	again, err := a.tr.Dial(testCtx(t, 10*time.Second), b.maddr(t), b.id())
	if err != nil || again != c {
		t.Fatalf("Dial after DialEarly: %v, same conn %v", err, again == c)
	}
	if got := a.sec.Stats().HandshakesInitiated; got != 1 {
		t.Fatalf("%d handshakes for one peer", got)
	}
	if !c.RemotePublicKey().Equal(b.key.Public()) {
		t.Fatal("remote public key differs from b's")
	}
}

// On loopback the handshake may well complete before the first stream is
// written: the Conn then simply carries it under the session's keys.
func TestTransportDialEarlyOnLoopback(t *testing.T) {
	a, b := loopbackStack(t), loopbackStack(t)
	b.echo(t)
	for i := 0; i < 3; i++ {
		c, err := a.tr.DialEarly(testCtx(t, 10*time.Second), b.maddr(t), b.id())
		if err != nil {
			t.Fatal(err)
		}
		if err := echoOnce(testCtx(t, 10*time.Second), c); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.sec.Stats().HandshakesInitiated; got != 1 {
		t.Fatalf("%d handshakes for one peer", got)
	}
}

// DialEarly to an ID the remote does not hold returns a Conn that closes
// with the handshake's failure; streams opened on it fail.
func TestTransportDialEarlyWrongPeerClosesConn(t *testing.T) {
	a, b := loopbackStack(t), loopbackStack(t)
	b.echo(t)
	other, _ := peer.GenerateKey(nil)
	c, err := a.tr.DialEarly(testCtx(t, 10*time.Second), b.maddr(t), other.ID())
	if err != nil {
		t.Fatal(err)
	}
	err = echoOnce(testCtx(t, 10*time.Second), c)
	var ce *transport.ConnError
	if !errors.As(err, &ce) || !errors.Is(err, transport.ErrConnClosed) {
		t.Fatalf("echo on a wrong-peer early Conn: %v", err)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the Conn did not close")
	}
	if got := b.sec.Stats().EarlyReceived; got != 0 {
		t.Fatalf("the remote opened %d 0-RTT packets sealed to another key", got)
	}
}

// Without a peer ID DialEarly is Dial (XX cannot send 0-RTT).
func TestTransportDialEarlyByAddressIsDial(t *testing.T) {
	a, b := loopbackStack(t), loopbackStack(t)
	b.echo(t)
	c, err := a.tr.DialEarly(testCtx(t, 10*time.Second), b.maddr(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.RemotePeer() != b.id() {
		t.Fatal("wrong remote")
	}
	if err := echoOnce(testCtx(t, 10*time.Second), c); err != nil {
		t.Fatal(err)
	}
	if a.sec.Stats().EarlySent != 0 {
		t.Fatal("an XX dial sent 0-RTT")
	}
}

// On a lossy path with reordering and duplication, 0-RTT packets that are
// lost, or arrive before the initiation and are dropped, are sent again by
// the mux under the session's keys: every early dial's first exchange
// completes, and a larger echo after it is byte-exact.
func TestTransportDialEarlyOnALossyPath(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time netsim scenario")
	}
	n := netsim.New(netsim.Config{Seed: 11})
	t.Cleanup(func() { n.Close() })
	link := netsim.Link{Latency: 5 * time.Millisecond, Loss: 0.1, Reorder: 0.2, Duplicate: 0.05}
	h := n.NewHost(netip.MustParseAddr("192.0.2.1"), link)
	pc, err := h.ListenUDP(4000)
	if err != nil {
		t.Fatal(err)
	}
	// A handshake crosses two 10 % links each way, so an attempt is lost
	// a third of the time: the default 10 s (five attempts) would fail one
	// dial in ~200; 25 s gives nine.
	sec := noise.Config{HandshakeTimeout: 25 * time.Second}
	srv := newStackWith(t, NewPort(pc, Config{}), sec)
	srv.echo(t)
	env := &rttEnv{n: n, link: link, srv: srv, sec: sec}
	for i := 0; i < 6; i++ {
		cl := env.client(t)
		c, err := cl.tr.DialEarly(testCtx(t, 30*time.Second), srv.maddr(t), srv.id())
		if err != nil {
			t.Fatal(err)
		}
		if err := echoOnce(testCtx(t, 60*time.Second), c); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		if i == 0 {
			roundTrip(t, c, randomBytes(256<<10))
		}
	}
	if srv.sec.Stats().EarlyReceived == 0 {
		t.Fatal("no 0-RTT packet made it through")
	}
}

// rttEnv is a netsim network with a server stack answering echo, where
// every client host is oneWay away from it.
type rttEnv struct {
	n      *netsim.Network
	link   netsim.Link
	srv    *stack
	hosts  int
	oneWay time.Duration
	sec    noise.Config // the clients' Noise configuration
}

func newRTTEnv(tb testing.TB, linkLatency time.Duration) *rttEnv {
	n := netsim.New(netsim.Config{Seed: 3})
	tb.Cleanup(func() { n.Close() })
	link := netsim.Link{Latency: linkLatency / 2}
	h := n.NewHost(netip.MustParseAddr("192.0.2.1"), link)
	pc, err := h.ListenUDP(4000)
	if err != nil {
		tb.Fatal(err)
	}
	srv := newStack(tb, NewPort(pc, Config{}))
	srv.echo(tb)
	return &rttEnv{n: n, link: link, srv: srv, oneWay: linkLatency}
}

// client makes a fresh client stack (own host, identity and port).
func (e *rttEnv) client(tb testing.TB) *stack {
	e.hosts++
	h := e.n.NewHost(netip.AddrFrom4([4]byte{10, 9, byte(e.hosts >> 8), byte(e.hosts)}), e.link)
	pc, err := h.ListenUDP(4000)
	if err != nil {
		tb.Fatal(err)
	}
	return newStackWith(tb, NewPort(pc, Config{}), e.sec)
}

// closeConns closes the client's Conn to srv and waits until the server
// has let go of the session too.
func closeConns(tb testing.TB, cl, srv *stack) {
	maddr, _ := transport.FromAddrPort(srv.port.LocalAddr(), "/ipv8")
	c, err := cl.tr.Dial(context.Background(), maddr, srv.id())
	if err != nil {
		tb.Fatal(err)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for liveConns(srv.tr) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
}

// liveConns counts the Conns of t that have not ended.
func liveConns(t *Transport) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, c := range t.conns.m {
		if !isDone(c.Done()) {
			n++
		}
	}
	return n
}

func timeConnectEcho(cl, srv *stack, early bool) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	maddr, err := transport.FromAddrPort(srv.port.LocalAddr(), "/ipv8")
	if err != nil {
		return 0, err
	}
	start := time.Now()
	var c transport.Conn
	if early {
		c, err = cl.tr.DialEarly(ctx, maddr, srv.id())
	} else {
		c, err = cl.tr.Dial(ctx, maddr, srv.id())
	}
	if err != nil {
		return 0, err
	}
	if err := echoOnce(ctx, c); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// BenchmarkConnectFirstStream times a fresh client (made untimed) from
// nothing to one byte echoed on its first stream, with Dial and with
// DialEarly, on loopback and on a 20 ms RTT netsim path (reported in RTTs
// too).
func BenchmarkConnectFirstStream(b *testing.B) {
	for _, early := range []bool{false, true} {
		name := "Dial"
		if early {
			name = "DialEarly"
		}
		b.Run("loopback/"+name, func(b *testing.B) {
			srv := loopbackStack(b)
			srv.echo(b)
			var total time.Duration
			for b.Loop() {
				b.StopTimer()
				cl := loopbackStack(b)
				b.StartTimer()
				d, err := timeConnectEcho(cl, srv, early)
				if err != nil {
					b.Fatal(err)
				}
				total += d
				b.StopTimer()
				cl.tr.Close()
				cl.port.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N), "us/connect+echo")
		})
		b.Run("loopback-resumed/"+name, func(b *testing.B) {
			// A client seen before: it reconnects with the ticket its
			// previous connection left (one DH per side).
			srv := loopbackStack(b)
			srv.echo(b)
			cl := loopbackStack(b)
			d, err := timeConnectEcho(cl, srv, early)
			if err != nil {
				b.Fatal(err)
			}
			closeConns(b, cl, srv)
			r0 := cl.sec.Stats().Resumptions
			var total time.Duration
			for b.Loop() {
				d, err = timeConnectEcho(cl, srv, early)
				if err != nil {
					b.Fatal(err)
				}
				total += d
				b.StopTimer()
				closeConns(b, cl, srv)
				b.StartTimer()
			}
			if got := cl.sec.Stats().Resumptions - r0; got != uint64(b.N) {
				b.Fatalf("%d of %d connections resumed", got, b.N)
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N), "us/connect+echo")
		})
		b.Run("netsim-20ms/"+name, func(b *testing.B) {
			env := newRTTEnv(b, 10*time.Millisecond)
			var total time.Duration
			for b.Loop() {
				b.StopTimer()
				cl := env.client(b)
				b.StartTimer()
				d, err := timeConnectEcho(cl, env.srv, early)
				if err != nil {
					b.Fatal(err)
				}
				total += d
				b.StopTimer()
				cl.tr.Close()
				cl.port.Close()
				b.StartTimer()
			}
			avg := total / time.Duration(b.N)
			b.ReportMetric(float64(avg.Microseconds()), "us/connect+echo")
			b.ReportMetric(float64(avg)/float64(2*env.oneWay), "RTTs")
		})
	}
}

// The reference: bare quic-go (TLS 1.3, both sides authenticated by Ed25519
// certificates as libp2p's TLS does), the same fresh-client connect and
// one-byte echo on its first stream.

func echoTLS(tb testing.TB) (server, client *tls.Config) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"x"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		tb.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"echo"}, ClientAuth: tls.RequireAnyClientCert}
	client = &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"echo"}, Certificates: []tls.Certificate{cert}}
	return server, client
}

// quicEchoServer serves a one-byte echo on every stream of every
// connection on pc, until the test ends.
func quicEchoServer(tb testing.TB, pc net.PacketConn) (*tls.Config, net.Addr) {
	stls, ctls := echoTLS(tb)
	tr := &quic.Transport{Conn: pc}
	ln, err := tr.Listen(stls, &quic.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close(); tr.Close() })
	go func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				for {
					st, err := c.AcceptStream(context.Background())
					if err != nil {
						return
					}
					go func() {
						io.Copy(st, st)
						st.Close()
					}()
				}
			}()
		}
	}()
	return ctls, ln.Addr()
}

func timeQUICConnectEcho(pc net.PacketConn, ctls *tls.Config, srv net.Addr) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr := &quic.Transport{Conn: pc}
	defer tr.Close()
	start := time.Now()
	c, err := tr.Dial(ctx, srv, ctls, &quic.Config{})
	if err != nil {
		return 0, err
	}
	defer c.CloseWithError(0, "")
	st, err := c.OpenStreamSync(ctx)
	if err != nil {
		return 0, err
	}
	if _, err := st.Write([]byte{0x2a}); err != nil {
		return 0, err
	}
	var b [1]byte
	if _, err := io.ReadFull(st, b[:]); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// BenchmarkConnectFirstStreamQUICGo is BenchmarkConnectFirstStream's
// reference, run the same way with bare quic-go.
func BenchmarkConnectFirstStreamQUICGo(b *testing.B) {
	b.Run("loopback", func(b *testing.B) {
		spc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		ctls, addr := quicEchoServer(b, spc)
		var total time.Duration
		for b.Loop() {
			b.StopTimer()
			pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			d, err := timeQUICConnectEcho(pc, ctls, addr)
			if err != nil {
				b.Fatal(err)
			}
			total += d
			b.StopTimer()
			pc.Close()
			b.StartTimer()
		}
		b.ReportMetric(float64(total.Microseconds())/float64(b.N), "us/connect+echo")
	})
	b.Run("netsim-20ms", func(b *testing.B) {
		env := newRTTEnv(b, 10*time.Millisecond)
		h := env.n.NewHost(netip.MustParseAddr("192.0.2.7"), env.link)
		spc, err := h.ListenUDP(4433)
		if err != nil {
			b.Fatal(err)
		}
		ctls, addr := quicEchoServer(b, spc)
		var total time.Duration
		for b.Loop() {
			b.StopTimer()
			env.hosts++
			ch := env.n.NewHost(netip.AddrFrom4([4]byte{10, 8, byte(env.hosts >> 8), byte(env.hosts)}), env.link)
			pc, err := ch.ListenUDP(4000)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			d, err := timeQUICConnectEcho(pc, ctls, addr)
			if err != nil {
				b.Fatal(err)
			}
			total += d
			b.StopTimer()
			pc.Close()
			b.StartTimer()
		}
		avg := total / time.Duration(b.N)
		b.ReportMetric(float64(avg.Microseconds()), "us/connect+echo")
		b.ReportMetric(float64(avg)/float64(2*env.oneWay), "RTTs")
	})
}
