package bench

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/mux/reliable"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocols/perf"
	"github.com/ipv8/go-ipv8/security/noise"
	"github.com/ipv8/go-ipv8/transport"
	"github.com/ipv8/go-ipv8/transport/udp"
)

// stackUDPParts is go-ipv8's raw-UDP data path without the Host: a
// udp.Port, security/noise on it and a mux/reliable Muxer over its
// sessions, composed here the way the root package is to compose them
// (Noise IK by peer ID, then the mux). It measures the pieces now, while
// the Host cannot run them yet, and separates their cost from the Host's
// (which runs two goroutines per Conn: its stream and datagram loops).
const stackUDPParts = "ipv8-udp-parts"

// udpParts is one end of the composed data path: its own identity and port.
type udpParts struct {
	key  *peer.PrivateKey
	port *udp.Port
	sec  *noise.Transport
	mux  *reliable.Muxer
}

// newUDPParts opens a port on loopback and starts Noise and the Muxer on
// it. disableSteering keeps the port to one socket.
func newUDPParts(disableSteering bool) (*udpParts, error) {
	key, err := peer.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	port, err := udp.Listen(udp.Config{
		Addr:            netip.MustParseAddrPort("127.0.0.1:0"),
		DisableSteering: disableSteering,
		Logger:          quiet,
	})
	if err != nil {
		return nil, err
	}
	sec, err := noise.New(key, port, noise.Config{Logger: quiet})
	if err != nil {
		port.Close()
		return nil, err
	}
	// Sessions send a connection's ready packets with one sendmmsg.
	sec.SetBatchWriter(func(pkts [][]byte, to netip.AddrPort) (int, error) {
		msgs := make([]udp.Message, len(pkts))
		for i, b := range pkts {
			msgs[i] = udp.Message{Buf: b, Addr: to}
		}
		return port.WriteBatch(msgs)
	})
	la, err := transport.FromAddrPort(port.LocalAddr(), "/ipv8")
	if err != nil {
		sec.Close()
		port.Close()
		return nil, err
	}
	return &udpParts{key: key, port: port, sec: sec, mux: reliable.New(reliable.Config{LocalAddr: la, Logger: quiet})}, nil
}

func (u *udpParts) close() {
	u.mux.Close()
	u.sec.Close()
	u.port.Close()
}

// accept takes in sessions, runs a Conn over each and hands it to f.
func (u *udpParts) accept(accepted *atomic.Int64, f func(transport.Conn)) {
	for {
		sess, err := u.sec.Accept(context.Background())
		if err != nil {
			return
		}
		c, err := u.mux.NewConn(sess, false)
		if err != nil {
			sess.Close()
			continue
		}
		// The session is authenticated when Accept returns it.
		accepted.Add(1)
		f(c)
	}
}

// servePartsConn serves perf and echo on the streams the remote opens.
func servePartsConn(c transport.Conn) {
	for {
		s, err := c.AcceptStream(context.Background())
		if err != nil {
			return
		}
		switch s.Protocol() {
		case perf.ID:
			go perf.Serve(s)
		case echoProto:
			go func() {
				io.Copy(s, s)
				s.Close()
			}()
		default:
			s.Reset(transport.CodeProtocolNotSupported)
		}
	}
}

// udpPartsClient is a fresh client of the composed data path.
type udpPartsClient struct {
	*udpParts
	srvAddr netip.AddrPort
	srvID   peer.ID
	conn    transport.Conn
}

func newUDPPartsClient(srvAddr netip.AddrPort, srvID peer.ID, disableSteering bool) (*udpPartsClient, error) {
	u, err := newUDPParts(disableSteering)
	if err != nil {
		return nil, err
	}
	return &udpPartsClient{udpParts: u, srvAddr: srvAddr, srvID: srvID}, nil
}

func (c *udpPartsClient) connect(ctx context.Context) error {
	sess, err := c.sec.Dial(ctx, c.srvAddr, c.srvID, nil)
	if err != nil {
		return err
	}
	conn, err := c.mux.NewConn(sess, true)
	if err != nil {
		sess.Close()
		return err
	}
	c.conn = conn
	return nil
}

func (c *udpPartsClient) echo(ctx context.Context) error {
	s, err := c.conn.OpenStream(ctx, echoProto)
	if err != nil {
		return err
	}
	defer s.Close()
	return echoOnce(s)
}

func (c *udpPartsClient) close() {
	if c.conn != nil {
		c.conn.Close()
	}
	c.udpParts.close()
}

// newUDPPartsServer starts the server end; keep, when set, receives each
// Conn instead of a stream-serving goroutine (the idle measurement).
func newUDPPartsServer(tb testing.TB, accepted *atomic.Int64, keep func(transport.Conn)) *udpParts {
	srv, err := newUDPParts(false)
	if err != nil {
		tb.Fatalf("%s: %v", stackUDPParts, err)
	}
	tb.Cleanup(srv.close)
	if keep == nil {
		keep = func(c transport.Conn) { go servePartsConn(c) }
	}
	go srv.accept(accepted, keep)
	return srv
}

func newUDPPartsStack(tb testing.TB) *stack {
	st := &stack{name: stackUDPParts, accepted: new(atomic.Int64)}
	srv := newUDPPartsServer(tb, st.accepted, nil)
	addr, id := srv.port.LocalAddr(), srv.key.ID()
	main, err := newUDPPartsClient(addr, id, false)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(main.close)
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	if err := main.connect(ctx); err != nil {
		tb.Fatalf("%s: %v", stackUDPParts, err)
	}
	st.transfer = func(n uint64) (time.Duration, error) {
		s, err := main.conn.OpenStream(context.Background(), perf.ID)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", stackUDPParts, err)
		}
		d, err := runPerf(s, n)
		if err != nil {
			s.Reset(transport.CodeInternal)
			return 0, fmt.Errorf("%s: %w", stackUDPParts, err)
		}
		s.Close()
		return d, nil
	}
	st.newClient = func() (client, error) { return newUDPPartsClient(addr, id, false) }
	return st
}
