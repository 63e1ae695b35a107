package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
	"github.com/ipv8/go-ipv8/transport/udp"
)

func newKey(t testing.TB) *peer.PrivateKey {
	t.Helper()
	k, err := peer.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// loopPort is a kernel UDP port on 127.0.0.1.
func loopPort(t testing.TB) *udp.Port {
	t.Helper()
	p, err := udp.Listen(udp.Config{Addr: netip.MustParseAddrPort("127.0.0.1:0"), DisableSteering: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

type node struct {
	key  *peer.PrivateKey
	port transport.Port
	ep   *Endpoint
}

func newNode(t testing.TB, port transport.Port, cfg Config) *node {
	t.Helper()
	k := newKey(t)
	if port == nil {
		port = loopPort(t)
	}
	ep, err := New(port, k, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return &node{key: k, port: port, ep: ep}
}

func (n *node) addr() netip.AddrPort { return n.port.LocalAddr() }

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// collector gathers what a circuit receives.
type collector struct {
	mu   sync.Mutex
	pkts [][]byte
	n    int
}

func collect(c *Circuit) *collector {
	col := &collector{}
	c.SetHandler(func(p []byte) {
		col.mu.Lock()
		col.pkts = append(col.pkts, append([]byte(nil), p...))
		col.n += len(p)
		col.mu.Unlock()
	})
	return col
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pkts)
}

func eventually(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// circuit opens a circuit from a to b through r (b reserves first).
func circuit(t testing.TB, r, a, b *node) (*Circuit, *Circuit) {
	t.Helper()
	res, err := b.ep.Reserve(ctxT(t, 5*time.Second), r.addr())
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if res.Observed() != b.addr() {
		t.Fatalf("relay observed %s, want %s", res.Observed(), b.addr())
	}
	ca, err := a.ep.Connect(ctxT(t, 5*time.Second), r.addr(), b.key.ID())
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	cb, err := b.ep.Accept(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	return ca, cb
}

func TestCircuitCarriesDatagramsBothWays(t *testing.T) {
	r := newNode(t, nil, Config{Serve: true})
	a := newNode(t, nil, Config{})
	b := newNode(t, nil, Config{})
	ca, cb := circuit(t, r, a, b)
	if ca.ID() != cb.ID() || ca.Peer() != b.key.ID() || cb.Peer() != a.key.ID() {
		t.Fatalf("circuit ids %d/%d peers %s/%s", ca.ID(), cb.ID(), ca.Peer(), cb.Peer())
	}
	if ca.PeerAddr() != b.addr() || cb.PeerAddr() != a.addr() {
		t.Fatalf("peer addresses %s, %s; want %s, %s", ca.PeerAddr(), cb.PeerAddr(), b.addr(), a.addr())
	}
	if ca.Kind() != transport.PathRelayed || ca.Addr() != r.addr() || ca.Overhead() != DataOverhead {
		t.Fatalf("path: kind %s addr %s overhead %d", ca.Kind(), ca.Addr(), ca.Overhead())
	}
	inA, inB := collect(ca), collect(cb)
	for i := range 100 {
		if err := ca.WritePacket(fmt.Appendf(nil, "a→b %d", i)); err != nil {
			t.Fatal(err)
		}
		if err := cb.WritePacket(fmt.Appendf(nil, "b→a %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "100 datagrams each way", 5*time.Second, func() bool { return inA.count() == 100 && inB.count() == 100 })
	inB.mu.Lock()
	if string(inB.pkts[7]) != "a→b 7" {
		t.Errorf("b got %q", inB.pkts[7])
	}
	inB.mu.Unlock()
	st := r.ep.Stats()
	if st.PacketsRelayed != 200 || st.Circuits != 1 || st.Reservations != 1 || st.CircuitsOpened != 1 {
		t.Fatalf("relay stats %+v", st)
	}
	// Closing one end closes the circuit at the relay and at the other end.
	ca.Close()
	select {
	case <-cb.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the other end did not learn of the close")
	}
	if !errors.Is(cb.Err(), ErrClosed) {
		t.Fatalf("other end's error %v", cb.Err())
	}
	eventually(t, "relay forgets the circuit", 5*time.Second, func() bool { return r.ep.Stats().Circuits == 0 })
}

func TestConnectWithoutReservationFails(t *testing.T) {
	r := newNode(t, nil, Config{Serve: true})
	a := newNode(t, nil, Config{})
	_, err := a.ep.Connect(ctxT(t, 5*time.Second), r.addr(), newKey(t).ID())
	if !errors.Is(err, ErrNoReservation) {
		t.Fatalf("got %v, want ErrNoReservation", err)
	}
	var re *Error
	if !errors.As(err, &re) || re.Relay != r.addr() {
		t.Fatalf("error %v does not name the relay", err)
	}
	if _, err := a.ep.Connect(ctxT(t, 5*time.Second), r.addr(), a.key.ID()); !errors.Is(err, ErrRefused) {
		t.Fatalf("circuit to oneself: %v", err)
	}
}

func TestClientIsNotARelay(t *testing.T) {
	r := newNode(t, nil, Config{}) // not serving
	a := newNode(t, nil, Config{RequestTimeout: 600 * time.Millisecond})
	if _, err := a.ep.Reserve(ctxT(t, 5*time.Second), r.addr()); !errors.Is(err, ErrTimeout) {
		t.Fatalf("reserving at a non-relay: %v, want ErrTimeout", err)
	}
}

// rawClient sends hand-made relay packets from its own port and records
// the answers.
type rawClient struct {
	port *udp.Port
	got  chan Msg
}

func newRaw(t *testing.T) *rawClient {
	rc := &rawClient{port: loopPort(t), got: make(chan Msg, 16)}
	rc.port.HandleType(transport.TypeRelay, func(pkt []byte, from netip.AddrPort) {
		if m, err := ParseMsg(pkt); err == nil {
			rc.got <- m
		}
	})
	return rc
}

func (rc *rawClient) ask(t *testing.T, to netip.AddrPort, m *Msg) Msg {
	t.Helper()
	if err := rc.port.WriteTo(m.Append(nil), to); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-rc.got:
		return r
	case <-time.After(3 * time.Second):
		t.Fatalf("no answer to %s", m.Kind)
	}
	return Msg{}
}

func TestSignedRequestsNeedTheSendersCookieAndKey(t *testing.T) {
	r := newNode(t, nil, Config{Serve: true})
	victim, attacker := newRaw(t), newRaw(t)
	key := newKey(t)

	// A cookie made for another address is refused.
	ch := victim.ask(t, r.addr(), &Msg{Kind: KindHello, Nonce: 1})
	if ch.Kind != KindChallenge || ch.Observed != victim.port.LocalAddr() {
		t.Fatalf("challenge %+v", ch)
	}
	m := Msg{Kind: KindReserve, Nonce: 2, Cookie: ch.Cookie}
	copy(m.Key[:], key.Public().Ed25519())
	copy(m.Sig[:], key.Sign(SignedBytes(&m)))
	if got := attacker.ask(t, r.addr(), &m); got.Kind != KindError || got.Code != CodeBadCookie {
		t.Fatalf("stolen cookie: %+v", got)
	}
	// The right cookie with a signature by another key is refused.
	bad := m
	copy(bad.Sig[:], newKey(t).Sign(SignedBytes(&bad)))
	if got := victim.ask(t, r.addr(), &bad); got.Kind != KindError || got.Code != CodeBadSignature {
		t.Fatalf("forged signature: %+v", got)
	}
	// And the genuine request succeeds.
	if got := victim.ask(t, r.addr(), &m); got.Kind != KindReserved || got.Observed != victim.port.LocalAddr() {
		t.Fatalf("genuine reserve: %+v", got)
	}
	if st := r.ep.Stats(); st.Reservations != 1 || st.Refused != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHelloMustBePadded(t *testing.T) {
	r := newNode(t, nil, Config{Serve: true})
	rc := newRaw(t)
	short := (&Msg{Kind: KindHello, Nonce: 9}).Append(nil)[:HeaderLen+8]
	rc.port.WriteTo(short, r.addr())
	select {
	case m := <-rc.got:
		t.Fatalf("a short hello was answered: %+v", m)
	case <-time.After(300 * time.Millisecond):
	}
	if r.ep.Stats().DroppedMalformed != 1 {
		t.Fatalf("stats %+v", r.ep.Stats())
	}
	ch := rc.ask(t, r.addr(), &Msg{Kind: KindHello, Nonce: 9})
	if n := len(ch.Append(nil)); n > HelloLen {
		t.Fatalf("challenge of %d bytes answers a hello of %d", n, HelloLen)
	}
}

func TestReservationsPerIPLimit(t *testing.T) {
	r := newNode(t, nil, Config{Serve: true, Limits: Limits{MaxReservationsPerIP: 2}})
	for i := range 3 {
		n := newNode(t, nil, Config{})
		_, err := n.ep.Reserve(ctxT(t, 5*time.Second), r.addr())
		if i < 2 && err != nil {
			t.Fatalf("reservation %d: %v", i, err)
		}
		if i == 2 {
			var re *Error
			if !errors.Is(err, ErrResourceLimit) || !errors.As(err, &re) || re.Code != CodeReservationsPerIP {
				t.Fatalf("third reservation from one IP: %v", err)
			}
			if !bytes.Contains([]byte(err.Error()), []byte("MaxReservationsPerIP")) {
				t.Fatalf("error does not say which limit: %v", err)
			}
		}
	}
}

func TestCircuitsPerPeerLimit(t *testing.T) {
	r := newNode(t, nil, Config{Serve: true, Limits: Limits{MaxCircuitsPerPeer: 1}})
	b := newNode(t, nil, Config{})
	if _, err := b.ep.Reserve(ctxT(t, 5*time.Second), r.addr()); err != nil {
		t.Fatal(err)
	}
	a1, a2 := newNode(t, nil, Config{}), newNode(t, nil, Config{})
	if _, err := a1.ep.Connect(ctxT(t, 5*time.Second), r.addr(), b.key.ID()); err != nil {
		t.Fatal(err)
	}
	_, err := a2.ep.Connect(ctxT(t, 5*time.Second), r.addr(), b.key.ID())
	var re *Error
	if !errors.As(err, &re) || re.Code != CodeCircuitsPerPeer || !errors.Is(err, ErrResourceLimit) {
		t.Fatalf("second circuit to a peer limited to one: %v", err)
	}
}

func TestCircuitClosedAtDataLimit(t *testing.T) {
	r := newNode(t, nil, Config{Serve: true, Limits: Limits{CircuitBytes: 10_000}})
	a, b := newNode(t, nil, Config{}), newNode(t, nil, Config{})
	ca, cb := circuit(t, r, a, b)
	if ca.Limit().Bytes != 10_000 {
		t.Fatalf("circuit limit %+v", ca.Limit())
	}
	in := collect(cb)
	pkt := make([]byte, 1000)
	for range 20 {
		ca.WritePacket(pkt)
		time.Sleep(time.Millisecond)
	}
	select {
	case <-ca.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("circuit not closed at its data limit")
	}
	if !errors.Is(ca.Err(), ErrLimitReached) {
		t.Fatalf("close reason %v", ca.Err())
	}
	<-cb.Done()
	in.mu.Lock()
	got := in.n
	in.mu.Unlock()
	if got > 10_000 {
		t.Fatalf("%d bytes crossed a 10000-byte circuit", got)
	}
	if r.ep.Stats().ClosedAtLimit != 1 {
		t.Fatalf("stats %+v", r.ep.Stats())
	}
}

func TestCircuitClosedAtDurationLimit(t *testing.T) {
	r := newNode(t, nil, Config{Serve: true, Limits: Limits{CircuitDuration: time.Second}})
	a, b := newNode(t, nil, Config{}), newNode(t, nil, Config{})
	ca, _ := circuit(t, r, a, b)
	if ca.Limit().Duration != 1 {
		t.Fatalf("limit %+v", ca.Limit())
	}
	select {
	case <-ca.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("circuit outlived its duration limit")
	}
	var re *Error
	if !errors.As(ca.Err(), &re) || re.Code != CodeDurationLimit {
		t.Fatalf("close reason %v", ca.Err())
	}
}

func TestTargetThatNeverAcceptsIsRefused(t *testing.T) {
	r := newNode(t, nil, Config{Serve: true, Limits: Limits{AcceptTimeout: time.Second}})
	b := newNode(t, nil, Config{})
	if _, err := b.ep.Reserve(ctxT(t, 5*time.Second), r.addr()); err != nil {
		t.Fatal(err)
	}
	b.ep.Close() // gone without telling the relay
	a := newNode(t, nil, Config{})
	_, err := a.ep.Connect(ctxT(t, 10*time.Second), r.addr(), b.key.ID())
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("connect to a silent target: %v", err)
	}
	eventually(t, "the pending circuit freed", 3*time.Second, func() bool { return r.ep.Stats().Circuits == 0 })
}

// DATA whose source is not an end of its circuit is not forwarded.
func TestDataFromAStrangerIsDropped(t *testing.T) {
	r := newNode(t, nil, Config{Serve: true})
	a, b := newNode(t, nil, Config{}), newNode(t, nil, Config{})
	ca, cb := circuit(t, r, a, b)
	in := collect(cb)
	stranger := newRaw(t)
	pkt := AppendDataHeader(nil, ca.ID())
	pkt = append(pkt, "injected"...)
	stranger.port.WriteTo(pkt, r.addr())
	// The stranger gets a (rate-limited) hint, never the data.
	select {
	case m := <-stranger.got:
		if m.Kind != KindError || m.Code != CodeUnknownCircuit {
			t.Fatalf("stranger got %+v", m)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no hint")
	}
	ca.WritePacket([]byte("genuine"))
	eventually(t, "genuine datagram", 3*time.Second, func() bool { return in.count() == 1 })
	in.mu.Lock()
	defer in.mu.Unlock()
	if string(in.pkts[0]) != "genuine" || r.ep.Stats().DroppedUnknown != 1 {
		t.Fatalf("got %q, stats %+v", in.pkts, r.ep.Stats())
	}
}

func TestPingReportsObservedAddress(t *testing.T) {
	r := newNode(t, nil, Config{Serve: true})
	a := newNode(t, nil, Config{})
	rtt, obs, err := a.ep.Ping(ctxT(t, 5*time.Second), r.addr())
	if err != nil || obs != a.addr() || rtt <= 0 {
		t.Fatalf("ping: %v %s %v", rtt, obs, err)
	}
}

func mustAddr(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
