package labtest

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/nat"
	"github.com/ipv8/go-ipv8/nat/natlab"
	"github.com/ipv8/go-ipv8/nat/pathsel"
	"github.com/ipv8/go-ipv8/nat/punch"
	"github.com/ipv8/go-ipv8/nat/relay"
	"github.com/ipv8/go-ipv8/security/noise"
	"github.com/ipv8/go-ipv8/transport"
	"github.com/ipv8/go-ipv8/transport/udp"
)

// relayedConns opens a Noise session from a to b through a circuit of the
// relay and the raw-UDP transport's Conns over it on both sides.
func relayedConns(t *testing.T, ctx context.Context, a, b *node, relayAt netip.AddrPort) (transport.Conn, transport.Conn, *relay.Circuit, noise.PathSetter) {
	t.Helper()
	ca, _, err := circuitTo(ctx, relayAt, a, b)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := a.noise.DialPath(ctx, ca, b.key.ID(), nil)
	if err != nil {
		t.Fatalf("Noise handshake through the relay: %v", err)
	}
	ra, err := transport.FromAddrPort(relayAt, "/ipv8")
	if err != nil {
		t.Fatal(err)
	}
	// The transport finds the live session with b and runs its Conn on it.
	connA, err := a.tr.Dial(ctx, ra, b.key.ID())
	if err != nil {
		t.Fatal(err)
	}
	connB, err := b.ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if connA.RemotePeer() != b.key.ID() || connB.RemotePeer() != a.key.ID() {
		t.Fatal("conns with the wrong peers")
	}
	return connA, connB, ca, sess.(noise.PathSetter)
}

// upgrade punches between a (initiator) and b over circuit ca, and starts
// a Selector that moves a's session to the punched path.
func upgrade(t *testing.T, ctx context.Context, a, b *node, ca *relay.Circuit, sess noise.PathSetter, onSwitch func(transport.PathKind)) (*pathsel.Selector, *punch.Result) {
	t.Helper()
	ra, err := a.punch.Initiate(ctx, ca)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.punch.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ra.Err != nil || rb.Err != nil {
		t.Fatalf("punch failed: %v / %v", ra, rb)
	}
	b.sessionPath(rb.Path)
	sel, err := pathsel.New(pathsel.Config{
		SetPath:  func(p pathsel.Path) error { return sess.SetPath(p) },
		Relay:    pathsel.Candidate{Path: ca, Ping: func(ctx context.Context) (time.Duration, error) { return a.punch.PingChannel(ctx, ca) }, RTT: ra.ChannelRTT},
		Interval: 300 * time.Millisecond,
		OnSwitch: func(k transport.PathKind, _, _ pathsel.Sample) {
			if onSwitch != nil {
				onSwitch(k)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sel.SetDirect(pathsel.Candidate{Path: a.sessionPath(ra.Path), Ping: ra.Path.Ping, RTT: ra.ProbeRTT}); err != nil {
		t.Fatal(err)
	}
	d, r := sel.Samples()
	t.Logf("punched: %v; direct %+v, relay %+v, session on %s", ra, d, r, sel.Current())
	go sel.Run(ctx)
	return sel, ra
}

// A 64 MiB stream runs through the relay between two port-restricted
// NATs; halfway through the first quarter a hole punch succeeds and the
// same session moves to the direct path (no new handshake): the stream
// arrives byte-exact and the relay stops carrying it.
func TestRelayToDirectUpgradeKeepsStreamInLab(t *testing.T) {
	size := int64(envInt("IPV8_NATLAB_UPGRADE_MIB", 64)) << 20
	l := newLab(t, []natlab.NAT{{Name: "prc", Kind: natlab.PortRestricted}, {Name: "prc2", Kind: natlab.PortRestricted}})
	a := l.client(t, "prc", nodeConfig{sessions: true})
	b := l.client(t, "prc2", nodeConfig{sessions: true})
	ctx := ctxT(t, 3*time.Minute)
	connA, connB, ca, sess := relayedConns(t, ctx, a, b, relayAddr)
	if sess.Path().Kind() != transport.PathRelayed || connA.Stats().Path != transport.PathRelayed {
		t.Fatalf("the session does not start on the relay (conn stats say %s)", connA.Stats().Path)
	}
	// Paced at 24 MiB/s (64 MiB in ≈ 2.7 s): the lab's links have no delay
	// or rate limit, and an unpaced stream on a loaded machine was once
	// over before the Selector's RTT samples let it move.
	tr := startPacedTransfer(ctx, connA, connB, size, 1, 24<<20)
	if err := tr.waitReceived(ctx, size/8); err != nil {
		t.Fatal(err)
	}
	before := l.relay.relay.Stats().BytesRelayed
	atSwitch := make(chan uint64, 4)
	sel, res := upgrade(t, ctx, a, b, ca, sess, func(transport.PathKind) {
		atSwitch <- l.relay.relay.Stats().BytesRelayed
	})
	// The Selector moves the session at once, or after a few pings when
	// the RTTs measured under the load of the stream made the direct path
	// look slower at first.
	var switched uint64
	select {
	case switched = <-atSwitch:
	case <-time.After(20 * time.Second):
		d, r := sel.Samples()
		t.Fatalf("the session did not move to the punched path (%v): direct %+v, relay %+v", res, d, r)
	}
	if sess.Path().Kind() != transport.PathDirect {
		t.Fatalf("after the move the session is on %s", sess.Path().Kind())
	}
	recvAtSwitch := tr.received.Load()
	if err := tr.wait(ctx); err != nil {
		t.Fatal(err)
	}
	after := l.relay.relay.Stats().BytesRelayed
	t.Logf("%d MiB: %.1f MiB through the relay before the punch, %.1f MiB when the session moved (%d MiB received then), %.2f MiB after; punch %v",
		size>>20, float64(before)/(1<<20), float64(switched)/(1<<20), recvAtSwitch>>20, float64(after-switched)/(1<<20), res)
	if sess.Path().Kind() != transport.PathDirect || connA.Stats().Path != transport.PathDirect || connB.Stats().Path != transport.PathDirect {
		t.Fatalf("session ended on %s (conn stats say %s and %s)", sess.Path().Kind(), connA.Stats().Path, connB.Stats().Path)
	}
	// The peer's session followed: its conn's remote is a's public address.
	if got, _, _ := transport.ToAddrPort(connB.RemoteMultiaddr()); got == relayAddr || got.Addr() != l.RouterWAN("prc") {
		t.Fatalf("b's session sends to %s, want a's public address", got)
	}
	// The move happened while the stream ran, and whatever was in flight
	// when it did may still cross the relay, but nothing more. (How much
	// crossed before the move depends on how fast the stream runs against
	// the punch's timers on a loaded machine: 17 MiB usually, 50 once.)
	if int64(recvAtSwitch) >= size {
		t.Fatalf("the session moved only after the whole stream had arrived")
	}
	if after-switched > 4<<20 {
		t.Fatalf("the relay carried %d bytes after the move (%d in total)", after-switched, after)
	}
	if hs := a.noise.Stats().HandshakesInitiated + b.noise.Stats().HandshakesInitiated; hs != 1 {
		t.Fatalf("%d handshakes: the move must not need a new one", hs)
	}
	if sel.Moves() != 1 {
		t.Fatalf("the session moved %d times", sel.Moves())
	}
}

// A client behind a port-restricted NAT streams 64 MiB to a public peer
// over a direct session; a quarter of the way through, the client moves to
// another router (its address changes: another NAT, another public IP).
// The session follows (Noise moves it on the client's first authenticated
// packet from the new address; no new handshake) and the stream arrives
// byte-exact.
func TestClientMovesToAnotherRouterMidTransferInLab(t *testing.T) {
	size := int64(envInt("IPV8_NATLAB_UPGRADE_MIB", 64)) << 20
	l := newLab(t, []natlab.NAT{{Name: "prc", Kind: natlab.PortRestricted}, {Name: "open", Kind: natlab.Open}, {Name: "mv", Kind: natlab.PortRestricted}})
	a := l.client(t, "prc", nodeConfig{sessions: true})
	b := l.client(t, "open", nodeConfig{sessions: true})
	ctx := ctxT(t, 3*time.Minute)
	bAddr, err := transport.FromAddrPort(netip.AddrPortFrom(l.ClientIP("open"), b.port.LocalAddr().Port()), "/ipv8")
	if err != nil {
		t.Fatal(err)
	}
	connA, err := a.tr.Dial(ctx, bAddr, b.key.ID())
	if err != nil {
		t.Fatal(err)
	}
	connB, err := b.ln.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before, _, _ := transport.ToAddrPort(connB.RemoteMultiaddr())
	tr := startTransfer(ctx, connA, connB, size, 2)
	if err := tr.waitReceived(ctx, size/4); err != nil {
		t.Fatal(err)
	}
	ip, err := l.Move("prc", "mv")
	if err != nil {
		t.Fatal(err)
	}
	movedAt := tr.received.Load()
	if err := tr.wait(ctx); err != nil {
		t.Fatal(err)
	}
	after, _, _ := transport.ToAddrPort(connB.RemoteMultiaddr())
	t.Logf("moved at %d MiB to %s behind %s: b saw a at %s, then at %s", movedAt>>20, ip, l.RouterWAN("mv"), before, after)
	if before.Addr() != l.RouterWAN("prc") || after.Addr() != l.RouterWAN("mv") {
		t.Fatalf("b saw a at %s, then %s; want %s then %s", before, after, l.RouterWAN("prc"), l.RouterWAN("mv"))
	}
	if hs := a.noise.Stats().HandshakesInitiated + b.noise.Stats().HandshakesInitiated; hs != 1 {
		t.Fatalf("%d handshakes", hs)
	}
	if b.noise.Stats().Roams == 0 {
		t.Fatal("b's session never moved")
	}
}

// Both peers are behind port-restricted NATs and run a session upgraded
// from the relay to a punched path. The client moves to another router
// mid-transfer: the punched path dies (the peer's NAT does not know the
// new address), the Selector moves the session back to the relay (the
// relay follows the client to its new address), a new punch opens a new
// direct path and the session moves there — and the stream arrives
// byte-exact through all of it.
func TestMoveBehindNATFallsBackToRelayAndPunchesAgainInLab(t *testing.T) {
	size := int64(envInt("IPV8_NATLAB_UPGRADE_MIB", 64)) << 20
	l := newLab(t, []natlab.NAT{{Name: "prc", Kind: natlab.PortRestricted}, {Name: "prc2", Kind: natlab.PortRestricted}, {Name: "mv", Kind: natlab.PortRestricted}})
	a := l.client(t, "prc", nodeConfig{sessions: true})
	b := l.client(t, "prc2", nodeConfig{sessions: true})
	ctx := ctxT(t, 3*time.Minute)
	connA, connB, ca, sess := relayedConns(t, ctx, a, b, relayAddr)
	tr := startTransfer(ctx, connA, connB, size, 3)
	if err := tr.waitReceived(ctx, size/16); err != nil {
		t.Fatal(err)
	}
	moves := make(chan transport.PathKind, 8)
	sel, _ := upgrade(t, ctx, a, b, ca, sess, func(k transport.PathKind) { moves <- k })
	if k := <-moves; k != transport.PathDirect {
		t.Fatalf("first move to %s", k)
	}
	if err := tr.waitReceived(ctx, size/4); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Move("prc", "mv"); err != nil {
		t.Fatal(err)
	}
	movedAt := tr.received.Load()
	select {
	case k := <-moves:
		if k != transport.PathRelayed {
			t.Fatalf("after the move the session went to %s", k)
		}
	case <-ctx.Done():
		t.Fatal("the session never fell back to the relay")
	}
	fellBack := tr.received.Load()
	// A new punch from the new address.
	ra, err := a.punch.Initiate(ctx, ca)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.punch.Accept(ctx)
	if err != nil || ra.Err != nil || rb.Err != nil {
		t.Fatalf("punch after the move: %v, %v / %v", err, ra, rb)
	}
	b.sessionPath(rb.Path)
	if ra.Path.Addr().Addr() != l.RouterWAN("prc2") {
		t.Fatalf("new path to %s", ra.Path.Addr())
	}
	if err := sel.SetDirect(pathsel.Candidate{Path: a.sessionPath(ra.Path), Ping: ra.Path.Ping, RTT: ra.ProbeRTT}); err != nil {
		t.Fatal(err)
	}
	if sess.Path().Kind() != transport.PathDirect {
		t.Fatal("the session did not move to the new punched path")
	}
	repunched := tr.received.Load()
	if err := tr.wait(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("moved at %d MiB; back on the relay at %d MiB; direct again at %d MiB; %d MiB byte-exact; %d moves",
		movedAt>>20, fellBack>>20, repunched>>20, size>>20, sel.Moves())
	if got, _, _ := transport.ToAddrPort(connB.RemoteMultiaddr()); got.Addr() != l.RouterWAN("mv") {
		t.Fatalf("b's session sends to %s, want a's new public address behind %s", got, l.RouterWAN("mv"))
	}
	if hs := a.noise.Stats().HandshakesInitiated + b.noise.Stats().HandshakesInitiated; hs != 1 {
		t.Fatalf("%d handshakes", hs)
	}
}

// delayedNode is a node whose port sends every datagram d late.
func (l *lab) delayedNode(t testing.TB, ns string, addr netip.AddrPort, d time.Duration, cfg nodeConfig) *node {
	t.Helper()
	if !addr.IsValid() {
		addr = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	}
	var c *net.UDPConn
	if err := l.In(ns, func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	p := udp.NewPort(newDelayConn(c, d), udp.Config{})
	cfg.port, cfg.closePort = p, p.Close
	return newNode(t, cfg)
}

// With 10 ms of delay in every sender (a direct RTT of 20 ms, 40 ms
// through the relay), the punched path is confirmed on both sides within
// 3 RTT of the coordination message that starts the punching (the SYNC,
// on its arrival at the responder, which is when the initiator starts
// too).
func TestDirectPathUpWithinThreeRTTInLab(t *testing.T) {
	const d = 10 * time.Millisecond
	l := newLab(t, []natlab.NAT{{Name: "prc", Kind: natlab.PortRestricted}, {Name: "prc2", Kind: natlab.PortRestricted}})
	relayAt := netip.AddrPortFrom(natlab.Spare2, 4001)
	l.delayedNode(t, l.ServerNS(), relayAt, d, nodeConfig{name: "relay", serve: true, limits: labLimits})
	var ups, rtts, hss []time.Duration
	for try := range 5 {
		a := l.delayedNode(t, l.ClientNS("prc"), netip.AddrPort{}, d, nodeConfig{name: "prc", noise: true, stunServers: stunServers, filtering: l.filtering["prc"]})
		b := l.delayedNode(t, l.ClientNS("prc2"), netip.AddrPort{}, d, nodeConfig{name: "prc2", noise: true, stunServers: stunServers, filtering: l.filtering["prc2"]})
		ctx := ctxT(t, 30*time.Second)
		ca, _, err := circuitTo(ctx, relayAt, a, b)
		if err != nil {
			t.Fatal(err)
		}
		ra, err := a.punch.Initiate(ctx, ca)
		if err != nil || ra.Err != nil {
			t.Fatalf("punch: %v %v", err, ra)
		}
		// A Noise session over the punched path at once (as a host that
		// had none would), with a datagram each way.
		exchanged := make(chan error, 1)
		var sessionAt time.Time
		go func() {
			err := exchange(ctx, a, b, a.sessionPath(ra.Path))
			sessionAt = time.Now()
			exchanged <- err
		}()
		rb, err := b.punch.Accept(ctx)
		if err != nil || rb.Err != nil {
			t.Fatalf("punch: %v, %v / %v", err, ra, rb)
		}
		if err := <-exchanged; err != nil {
			t.Fatal(err)
		}
		var samples []time.Duration
		for range 5 {
			rtt, err := ra.Path.Ping(ctx)
			if err != nil {
				t.Fatal(err)
			}
			samples = append(samples, rtt)
		}
		slices.Sort(samples)
		rtt := samples[2]
		up := max(ra.Started.Add(ra.Elapsed).Sub(rb.Started), rb.Elapsed)
		hs := sessionAt.Sub(rb.Started)
		t.Logf("try %d: RTT %.1f ms (relay %.1f ms); from the SYNC's arrival: initiator started at %+.1f ms, confirmed the path at %.1f ms, responder at %.1f ms (up in %.2f RTT); a new Noise session over it carried a datagram each way at %.1f ms (%.2f RTT)",
			try, ms(rtt), ms(ra.ChannelRTT), ms(ra.Started.Sub(rb.Started)), ms(ra.Started.Add(ra.Elapsed).Sub(rb.Started)), ms(rb.Elapsed), float64(up)/float64(rtt), ms(hs), float64(hs)/float64(rtt))
		ups, rtts, hss = append(ups, up), append(rtts, rtt), append(hss, hs)
		a.close()
		b.close()
	}
	// The median try, so that one descheduled goroutine on a loaded
	// machine does not decide.
	median := func(xs []time.Duration) float64 {
		r := make([]float64, len(xs))
		for i := range xs {
			r[i] = float64(xs[i]) / float64(rtts[i])
		}
		slices.Sort(r)
		return r[len(r)/2]
	}
	if m := median(ups); m > 3 {
		t.Fatalf("direct path up in %.2f RTT (median of %d), want ≤ 3", m, len(ups))
	}
	if m := median(hss); m > 3 {
		t.Fatalf("a new session over the punched path took %.2f RTT (median of %d), want ≤ 3", m, len(hss))
	}
	if rtts[0] < 2*d {
		t.Fatalf("RTT %s below the delay line's %s", rtts[0], 2*d)
	}
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// Keepalives at nat.KeepaliveInterval of the mapping lifetime keep an idle
// punched path open past the NATs' UDP timeout; without them it closes.
// Both routers here forget an idle UDP flow after 4 s (conntrack timeouts
// set in the router); the paths idle for 10 s.
func TestKeepalivesHoldIdlePunchedPathInLab(t *testing.T) {
	const timeout = 4
	l := newLab(t, []natlab.NAT{
		{Name: "ka", Kind: natlab.PortRestricted, UDPTimeout: timeout}, {Name: "ka2", Kind: natlab.PortRestricted, UDPTimeout: timeout},
		{Name: "nk", Kind: natlab.PortRestricted, UDPTimeout: timeout}, {Name: "nk2", Kind: natlab.PortRestricted, UDPTimeout: timeout},
	})
	// What part 1's lifetime measurement finds for these routers (alive
	// just under the timeout) gives the interval.
	keep := nat.KeepaliveInterval(timeout*time.Second - 300*time.Millisecond)
	idle := 10 * time.Second
	type outcome struct {
		name string
		err  error
	}
	results := make(chan outcome, 2)
	for _, c := range []struct {
		a, b      string
		keepalive time.Duration
	}{{"ka", "ka2", keep}, {"nk", "nk2", time.Hour}} {
		go func() {
			a := l.client(t, c.a, nodeConfig{keepalive: c.keepalive})
			b := l.client(t, c.b, nodeConfig{keepalive: c.keepalive})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ca, _, err := circuitTo(ctx, relayAddr, a, b)
			if err != nil {
				results <- outcome{c.a, err}
				return
			}
			ra, err := a.punch.Initiate(ctx, ca)
			if err == nil && ra.Err != nil {
				err = ra.Err
			}
			if err != nil {
				results <- outcome{c.a, err}
				return
			}
			if _, err := b.punch.Accept(ctx); err != nil {
				results <- outcome{c.a, err}
				return
			}
			time.Sleep(idle)
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			defer pcancel()
			_, err = ra.Path.Ping(pctx)
			results <- outcome{c.a, err}
		}()
	}
	for range 2 {
		r := <-results
		switch r.name {
		case "ka":
			if r.err != nil {
				t.Errorf("with keepalives every %s, the path idle for %s does not answer: %v", keep, idle, r.err)
			}
		case "nk":
			if r.err == nil {
				t.Errorf("without keepalives the path still answers after %s idle: the routers' %d s timeout is not what the test thinks", idle, timeout)
			}
		}
	}
	t.Logf("keepalive interval %s for a %d s UDP timeout; idle %s", keep, timeout, idle)
}
