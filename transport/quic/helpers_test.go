package quic

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
)

// testTimeout bounds every wait in the tests: generous, for a loaded 2-core
// machine under -race.
const testTimeout = 20 * time.Second

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// node is a transport on its own loopback socket.
type node struct {
	key   *peer.PrivateKey
	pconn *net.UDPConn
	tr    *Transport
	ln    transport.Listener
}

func (n *node) id() peer.ID { return n.key.ID() }

// newNode makes a transport on a fresh loopback *net.UDPConn; it is closed
// (transport first, then the socket, as a host does) when the test ends.
func newNode(t testing.TB, cfg Config) *node {
	t.Helper()
	key, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	pconn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	tr, err := New(key, pconn, cfg)
	if err != nil {
		pconn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tr.Close()
		pconn.Close()
	})
	return &node{key: key, pconn: pconn, tr: tr}
}

// listeningNode is newNode with a Listener.
func listeningNode(t testing.TB, cfg Config) *node {
	t.Helper()
	n := newNode(t, cfg)
	ln, err := n.tr.Listen()
	if err != nil {
		t.Fatal(err)
	}
	n.ln = ln
	return n
}

// connect dials b from a and returns both ends.
func connect(t testing.TB, a, b *node) (transport.Conn, transport.Conn) {
	t.Helper()
	ctx := testCtx(t)
	type res struct {
		c   transport.Conn
		err error
	}
	acc := make(chan res, 1)
	go func() {
		c, err := b.ln.Accept(ctx)
		acc <- res{c, err}
	}()
	ca, err := a.tr.Dial(ctx, b.ln.Multiaddr(), b.id())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	r := <-acc
	if r.err != nil {
		t.Fatalf("accept: %v", r.err)
	}
	return ca, r.c
}
