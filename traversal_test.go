package ipv8_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	ipv8 "github.com/ipv8/go-ipv8"
	"github.com/ipv8/go-ipv8/host"
	"github.com/ipv8/go-ipv8/internal/netsim"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
)

const sinkProto = "/test/sink/1"

// natWorld is a netsim internet with a public relay host and hosts behind
// NATs of their own, all built with ipv8.New.
type natWorld struct {
	n     *netsim.Network
	wan   netsim.Link
	relay *host.Host
	// relayAddr is the relay as ipv8.Relays takes it.
	relayAddr string
	next      byte
}

func newNATWorld(t *testing.T, seed uint64) *natWorld {
	t.Helper()
	n := netsim.New(netsim.Config{Seed: seed})
	t.Cleanup(func() { n.Close() })
	// 10 MB/s access links: a few MiB take long enough that the punch
	// lands in the middle of the stream.
	w := &natWorld{n: n, wan: netsim.Link{Latency: 5 * time.Millisecond, Bandwidth: 10_000_000}}
	c, err := n.NewHost(netip.MustParseAddr("192.0.2.1"), w.wan).ListenUDP(4000)
	if err != nil {
		t.Fatal(err)
	}
	w.relay, err = ipv8.New(ipv8.WithPacketConn(c), ipv8.EnableRelayService(), ipv8.Logger(testLogger(t, "relay")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.relay.Close() })
	w.relayAddr = "/ip4/192.0.2.1/udp/4000/ipv8/p2p/" + w.relay.ID().String()
	return w
}

// behind builds a host behind a NAT of its own (public address
// 198.51.100.x) that holds a reservation at the relay.
func (w *natWorld) behind(t *testing.T, name string, cfg netsim.NATConfig, opts ...ipv8.Option) *host.Host {
	t.Helper()
	w.next++
	box := w.n.NewNAT(netip.AddrFrom4([4]byte{198, 51, 100, w.next}), cfg, w.wan)
	// Each LAN has its own private prefix, so that a peer's private
	// address leads nowhere from another LAN (as on the internet).
	c, err := box.NewHost(netip.AddrFrom4([4]byte{10, w.next, 0, 2}), netsim.Link{Latency: time.Millisecond}).ListenUDP(5000)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ipv8.New(append([]ipv8.Option{ipv8.WithPacketConn(c), ipv8.Relays(w.relayAddr), ipv8.Logger(testLogger(t, name))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// relayedAddr waits until h advertises a relayed address and returns it.
func relayedAddr(t *testing.T, ctx context.Context, h *host.Host) ma.Multiaddr {
	t.Helper()
	for {
		for _, a := range h.Addrs() {
			if isCircuit(a) {
				return a
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s advertises no relayed address: %v", h.ID().ShortString(), h.Addrs())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

var (
	portRestricted = netsim.NATConfig{Mapping: netsim.EndpointIndependent, Filtering: netsim.AddressAndPortDependent}
	symmetric      = netsim.NATConfig{Mapping: netsim.AddressAndPortDependent, Filtering: netsim.AddressAndPortDependent, PortAllocation: netsim.PortRandom}
)

// sink counts and hashes what a stream of sinkProto carries.
type sink struct {
	received atomic.Int64
	sum      chan [32]byte
}

func serveSink(h *host.Host) *sink {
	s := &sink{sum: make(chan [32]byte, 1)}
	h.SetStreamHandler(sinkProto, func(st transport.Stream) {
		defer st.Close()
		hs := sha256.New()
		buf := make([]byte, 64<<10)
		for {
			n, err := st.Read(buf)
			hs.Write(buf[:n])
			s.received.Add(int64(n))
			if err != nil {
				break
			}
		}
		var d [32]byte
		copy(d[:], hs.Sum(nil))
		s.sum <- d
	})
	return s
}

// sendStream writes n pseudo-random bytes on a new stream to p and returns
// their SHA-256 (through done) and the stream's Conn.
func sendStream(ctx context.Context, h *host.Host, p peer.ID, n int64) (transport.Conn, transport.PathKind, <-chan error, *[32]byte, error) {
	s, err := h.NewStream(ctx, p, sinkProto)
	if err != nil {
		return nil, 0, nil, nil, err
	}
	pathAtOpen := s.Conn().Stats().Path
	done := make(chan error, 1)
	var sum [32]byte
	go func() {
		defer s.Close()
		hs := sha256.New()
		src := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{9}), n), hs)
		if _, err := io.CopyBuffer(s, src, make([]byte, 64<<10)); err != nil {
			done <- err
			return
		}
		copy(sum[:], hs.Sum(nil))
		done <- s.CloseWrite()
	}()
	return s.Conn(), pathAtOpen, done, &sum, nil
}

func streamMiB() int64 {
	if s := os.Getenv("IPV8_NAT_STREAM_MIB"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	}
	return 8
}

// Two hosts behind port-restricted NATs, both with ipv8.Relays: A knows
// only B's peer ID and B's relayed address. A's stream to B starts on the
// relay; a hole punch coordinated over the circuit succeeds and the same
// Conn moves to the direct path on both sides while the multi-MiB stream
// runs, which arrives byte-exact.
func TestRelayedConnMovesToDirectWhileStreamRuns(t *testing.T) {
	w := newNATWorld(t, 11)
	a := w.behind(t, "a", portRestricted)
	b := w.behind(t, "b", portRestricted)
	snk := serveSink(b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bAddr := relayedAddr(t, ctx, b)
	subA, subB := a.Subscribe(16), b.Subscribe(16)
	defer subA.Close()
	defer subB.Close()

	size := streamMiB() << 20
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: []ma.Multiaddr{bAddr}}); err != nil {
		t.Fatal(err)
	}
	conn, pathAtOpen, sent, sum, err := sendStream(ctx, a, b.ID(), size)
	if err != nil {
		t.Fatal(err)
	}
	if pathAtOpen != transport.PathRelayed {
		t.Fatalf("the stream opened on a %s path: A knew only B's relayed address", pathAtOpen)
	}
	// Both hosts tell of the move, and the stream is still running then.
	var movedAt int64
	for _, sub := range []*host.Subscription{subA, subB} {
		ev := waitPathEvent(t, ctx, sub)
		if ev.Path != transport.PathDirect {
			t.Fatalf("path event to %s, want direct", ev.Path)
		}
		if sub == subA {
			movedAt = snk.received.Load()
			if ev.Conn != conn {
				t.Fatal("the move is reported on another Conn than the stream's")
			}
		}
	}
	if err := <-sent; err != nil {
		t.Fatalf("sending: %v", err)
	}
	var got [32]byte
	select {
	case got = <-snk.sum:
	case <-ctx.Done():
		t.Fatalf("B received %d of %d bytes", snk.received.Load(), size)
	}
	t.Logf("%d MiB: the Conn moved to direct with %.2f MiB received", size>>20, float64(movedAt)/(1<<20))
	if snk.received.Load() != size || got != *sum {
		t.Fatalf("received %d of %d bytes; digests equal: %v", snk.received.Load(), size, got == *sum)
	}
	if movedAt >= size {
		t.Fatalf("the Conn moved only after the whole stream had arrived")
	}
	if a.Conn(b.ID()) != conn {
		t.Fatal("A's Conn to B was replaced: the move must keep it")
	}
	if conn.Stats().Path != transport.PathDirect || b.Conn(a.ID()).Stats().Path != transport.PathDirect {
		t.Fatalf("paths at the end: A %s, B %s", conn.Stats().Path, b.Conn(a.ID()).Stats().Path)
	}
	// B's direct address is its NAT's, not the relay's.
	ap, _, err := transport.ToAddrPort(conn.RemoteMultiaddr())
	if err != nil || ap.Addr() != netip.MustParseAddr("198.51.100.2") {
		t.Fatalf("A sends to %v (%v), want B's NAT 198.51.100.2", ap, err)
	}
	// The relay's own address never became one of B's.
	for _, m := range a.Peerstore().Addrs(b.ID()) {
		if ap, rest, err := transport.ToAddrPort(m); err == nil && ap.Addr() == netip.MustParseAddr("192.0.2.1") && len(rest) == 1 {
			t.Fatalf("A's peerstore holds the relay's address %s for B", m)
		}
	}
}

// A is given all of B's addresses (what identify or a peer record would
// give: B's private address, unreachable from A's LAN, and its relayed
// one). The host dials the direct ones first and the relayed one after the
// stagger; the Noise handshake already in flight to the private address
// moves to the circuit, so the Conn comes up through the relay at once
// instead of after the handshake timeout, and is then upgraded.
func TestDialFallsBackFromUnreachableDirectAddressToRelay(t *testing.T) {
	w := newNATWorld(t, 13)
	a := w.behind(t, "a", portRestricted)
	b := w.behind(t, "b", portRestricted)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	relayedAddr(t, ctx, b)
	sub := a.Subscribe(16)
	defer sub.Close()
	ai := b.AddrInfo()
	var direct int
	for _, m := range ai.Addrs {
		if !isCircuit(m) {
			direct++
		}
	}
	if direct == 0 || direct == len(ai.Addrs) {
		t.Fatalf("B's addresses %v: want direct and relayed ones", ai.Addrs)
	}
	start := time.Now()
	if err := a.Connect(ctx, ai); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	c := a.Conn(b.ID())
	t.Logf("connected in %v over %s (B's addresses: %v)", took, c.Stats().Path, ai.Addrs)
	// The Noise handshake times out after 10 s; the relay must not wait
	// for that.
	if took > 5*time.Second {
		t.Fatalf("connecting took %v: the relayed address waited for the direct dial to time out", took)
	}
	if ev := waitPathEvent(t, ctx, sub); ev.Path != transport.PathDirect || ev.Conn != c {
		t.Fatalf("path event %+v, want this Conn on a direct path", ev)
	}
}

func isCircuit(m ma.Multiaddr) bool {
	for _, c := range m {
		if c.Code() == ma.P_CIRCUIT {
			return true
		}
	}
	return false
}

// One host behind a symmetric NAT (random ports), the other behind a
// port-restricted one: no punch can work (the relay is their only STUN
// server, so neither learns more than that), and the Conn stays relayed
// and carries a multi-MiB stream byte-exact.
func TestRelayedConnStaysRelayedWhenPunchingFails(t *testing.T) {
	w := newNATWorld(t, 12)
	a := w.behind(t, "a", portRestricted)
	c := w.behind(t, "c", symmetric)
	snk := serveSink(c)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cAddr := relayedAddr(t, ctx, c)
	sub := a.Subscribe(16)
	defer sub.Close()
	if err := a.Connect(ctx, peer.AddrInfo{ID: c.ID(), Addrs: []ma.Multiaddr{cAddr}}); err != nil {
		t.Fatal(err)
	}
	size := streamMiB() << 20
	conn, pathAtOpen, sent, sum, err := sendStream(ctx, a, c.ID(), size)
	if err != nil {
		t.Fatal(err)
	}
	if pathAtOpen != transport.PathRelayed {
		t.Fatalf("the stream opened on a %s path", pathAtOpen)
	}
	if err := <-sent; err != nil {
		t.Fatalf("sending: %v", err)
	}
	var got [32]byte
	select {
	case got = <-snk.sum:
	case <-ctx.Done():
		t.Fatalf("C received %d of %d bytes", snk.received.Load(), size)
	}
	if snk.received.Load() != size || got != *sum {
		t.Fatalf("received %d of %d bytes; digests equal: %v", snk.received.Load(), size, got == *sum)
	}
	// The punch (tried at once, over in ~3 s) must not have moved it.
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case e := <-sub.C:
			if pe, ok := e.(host.EvtPeerPathChanged); ok {
				t.Fatalf("the Conn moved to %s: a symmetric NAT with random ports cannot be punched this way", pe.Path)
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
	if conn.Stats().Path != transport.PathRelayed || a.Conn(c.ID()) != conn {
		t.Fatalf("at the end the Conn is on %s (same Conn: %v)", conn.Stats().Path, a.Conn(c.ID()) == conn)
	}
}

// A Conn with nothing to send still moves on both sides: the punching
// side's session announces the new path (an empty keepalive), so the
// peer's session follows at once instead of at its next packet.
func TestIdleRelayedConnMovesOnBothSides(t *testing.T) {
	w := newNATWorld(t, 14)
	a := w.behind(t, "a", portRestricted)
	b := w.behind(t, "b", portRestricted)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bAddr := relayedAddr(t, ctx, b)
	subA, subB := a.Subscribe(16), b.Subscribe(16)
	defer subA.Close()
	defer subB.Close()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: []ma.Multiaddr{bAddr}}); err != nil {
		t.Fatal(err)
	}
	if ev := waitPathEvent(t, ctx, subA); ev.Path != transport.PathDirect {
		t.Fatalf("A moved to %s", ev.Path)
	}
	// Without the announcement B would follow only at the next packet of
	// the idle Conn (about 15 s later here).
	followCtx, cancelFollow := context.WithTimeout(ctx, 5*time.Second)
	defer cancelFollow()
	if ev := waitPathEvent(t, followCtx, subB); ev.Path != transport.PathDirect {
		t.Fatalf("B moved to %s", ev.Path)
	}
	ap, _, err := transport.ToAddrPort(b.Conn(a.ID()).RemoteMultiaddr())
	if err != nil || ap.Addr() != netip.MustParseAddr("198.51.100.1") {
		t.Fatalf("B sends to %v, want A's NAT", ap)
	}
}

func waitPathEvent(t *testing.T, ctx context.Context, sub *host.Subscription) host.EvtPeerPathChanged {
	t.Helper()
	for {
		select {
		case e, ok := <-sub.C:
			if !ok {
				t.Fatal("subscription closed")
			}
			if pe, ok := e.(host.EvtPeerPathChanged); ok {
				return pe
			}
		case <-ctx.Done():
			t.Fatal(errors.New("no path event: the Conn did not move to the punched path"))
		}
	}
}

// testLogger logs at debug level into a buffer that is printed when the
// test fails (or IPV8_TEST_LOGS is set).
func testLogger(t *testing.T, name string) *slog.Logger {
	t.Helper()
	lb := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("IPV8_TEST_LOGS") != "" {
			t.Logf("log of %s:\n%s", name, lb.String())
		}
	})
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 4<<20 {
		return len(p), nil // enough to see what happened
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
