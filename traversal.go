package ipv8

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipv8/go-ipv8/host"
	"github.com/ipv8/go-ipv8/nat"
	"github.com/ipv8/go-ipv8/nat/pathsel"
	"github.com/ipv8/go-ipv8/nat/punch"
	"github.com/ipv8/go-ipv8/nat/relay"
	"github.com/ipv8/go-ipv8/nat/stun"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/security"
	"github.com/ipv8/go-ipv8/security/noise"
	"github.com/ipv8/go-ipv8/transport"
	"github.com/ipv8/go-ipv8/transport/udp"
)

// traversal wires NAT traversal into the host (host.NATTraversal) and the
// raw-UDP transport (udp.CircuitDialer), as nat/labtest composes it by hand:
//
//   - nat/relay on the port: reservations at the configured relays (their
//     /p2p-circuit addresses go into Addrs), circuits opened for the
//     transport's dials of relayed addresses, circuits peers open to us,
//     and, with EnableRelayService, the relay service;
//   - every circuit's packets are routed by type: Noise packets to the
//     Noise transport's HandleVia (the session runs over the circuit),
//     punch coordination to the Puncher;
//   - for each Conn that starts relayed, the end that opened the circuit
//     punches (nat/punch, coordinated over the circuit, DCUtR's model) and
//     a Selector (nat/pathsel) moves the session to the punched path, keeps
//     it on the better path and back on the relay if the direct one dies;
//     a new punch is tried then. The other end answers the punch and its
//     session follows ours (Noise roams on an authenticated packet).
type traversal struct {
	cfg    *Config
	port   transport.Port
	stun   *stun.Endpoint
	relay  *relay.Endpoint
	punch  *punch.Puncher // nil: hole punching disabled
	log    *slog.Logger
	relays []relayPeer

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	noise     *noise.Transport
	started   bool
	closed    bool
	changed   func()
	reserved  map[netip.AddrPort]bool // relays holding a reservation of ours
	used      []netip.AddrPort        // relays of our latest circuits, newest last (STUN servers for punching)
	responded map[peer.ID]*punch.Path // paths punched at a peer's request, by peer
}

// relayPeer is a configured relay.
type relayPeer struct {
	id   peer.ID
	addr netip.AddrPort
}

// Punching retries: a Conn whose punch failed tries again after
// punchRetry, doubling, at most punchAttempts times in a row; a Conn whose
// direct path died (the Selector moved it back to the relay) punches again
// after repunchAfter.
const (
	punchAttempts = 3
	punchRetry    = 30 * time.Second
	repunchAfter  = 5 * time.Second
	selectorEvery = time.Second
)

func newTraversal(cfg *Config, port transport.Port, se *stun.Endpoint) (*traversal, error) {
	t := &traversal{
		cfg: cfg, port: port, stun: se,
		log:       cfg.Logger.With("component", "traversal"),
		reserved:  map[netip.AddrPort]bool{},
		responded: map[peer.ID]*punch.Path{},
	}
	self := cfg.Key.ID()
	for _, ai := range cfg.Relays {
		if ai.ID == self {
			continue // a relay lists itself in a shared configuration
		}
		ap, _, err := transport.ToAddrPort(ai.Addrs[0])
		if err != nil {
			return nil, fmt.Errorf("ipv8: relay %s: %w", ai, err)
		}
		t.relays = append(t.relays, relayPeer{ai.ID, ap})
	}
	keepalive := nat.KeepaliveInterval(cfg.MappingLifetime)
	var err error
	t.relay, err = relay.New(port, cfg.Key, relay.Config{
		Serve: cfg.RelayService, Limits: cfg.RelayLimits, Keepalive: keepalive, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	if !cfg.DisablePunching {
		t.punch, err = punch.New(port, punch.Config{
			Self:      t.describe,
			ListenAux: cfg.PunchSockets, // defaults.go
			Keepalive: keepalive,
			Logger:    cfg.Logger,
		})
		if err != nil {
			t.relay.Close()
			return nil, err
		}
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return t, nil
}

// setNoise gives the traversal the Noise transport that circuits' packets
// go to (the raw-UDP transport's).
func (t *traversal) setNoise(n *noise.Transport) {
	t.mu.Lock()
	t.noise = n
	t.mu.Unlock()
}

func (t *traversal) noiseT() *noise.Transport {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.noise
}

// Start (host.NATTraversal) accepts circuits and punches peers open to us,
// and reserves at the configured relays.
func (t *traversal) Start(addrsChanged func()) {
	t.mu.Lock()
	if t.started || t.closed {
		t.mu.Unlock()
		return
	}
	t.started, t.changed = true, addrsChanged
	t.mu.Unlock()
	t.wg.Go(t.acceptCircuits)
	if t.punch != nil {
		t.wg.Go(t.acceptPunches)
	}
	for _, r := range t.relays {
		t.wg.Go(func() { t.keepReservation(r) })
	}
}

// Close stops the loops, the Puncher (punched paths close) and the relay
// endpoint (circuits and reservations end).
func (t *traversal) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	t.cancel()
	if t.punch != nil {
		t.punch.Close()
	}
	t.relay.Close()
	t.wg.Wait()
	return nil
}

// keepReservation reserves at r until it succeeds (retrying from 1 s,
// doubling up to a minute), then leaves the refreshing to the relay
// endpoint, which renews at three quarters of the reservation's life and
// at once when the relay sees us at a new address.
func (t *traversal) keepReservation(r relayPeer) {
	backoff := time.Second
	for {
		ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
		res, err := t.relay.Reserve(ctx, r.addr)
		cancel()
		if err == nil {
			t.log.Debug("reserved at relay", "relay", r.id, "addr", r.addr, "seen_as", res.Observed())
			t.mu.Lock()
			t.reserved[r.addr] = true
			changed := t.changed
			t.mu.Unlock()
			if changed != nil {
				changed()
			}
			return
		}
		if t.ctx.Err() != nil {
			return
		}
		t.log.Info("relay reservation failed; retrying", "relay", r.id, "addr", r.addr, "in", backoff, "err", err)
		select {
		case <-t.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

// RelayAddrs (host.NATTraversal): /…/udp/N/ipv8/p2p/RELAY/p2p-circuit for
// each relay holding our reservation.
func (t *traversal) RelayAddrs() []ma.Multiaddr {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []ma.Multiaddr
	for _, r := range t.relays {
		if !t.reserved[r.addr] {
			continue
		}
		a, err := circuitAddr(r)
		if err != nil {
			continue
		}
		out = append(out, a)
	}
	return out
}

// circuitAddr is the address peers dial to reach us through r.
func circuitAddr(r relayPeer) (ma.Multiaddr, error) {
	base, err := transport.FromAddrPort(r.addr, "/ipv8")
	if err != nil {
		return nil, err
	}
	rc, err := ma.NewComponent("p2p", r.id.String())
	if err != nil {
		return nil, err
	}
	circ, err := ma.NewComponent("p2p-circuit", "")
	if err != nil {
		return nil, err
	}
	return base.AppendComponent(rc, circ), nil
}

// DialCircuit (udp.CircuitDialer) opens a circuit to p through the relay
// at addr and routes what comes back over it.
func (t *traversal) DialCircuit(ctx context.Context, addr netip.AddrPort, relayID, p peer.ID) (udp.Circuit, error) {
	c, err := t.relay.Connect(ctx, addr, p)
	if err != nil {
		return nil, err
	}
	t.noteRelay(addr)
	t.route(c)
	return c, nil
}

// maxUsedRelays bounds the relays of circuits (chosen by peers' addresses)
// that a punch asks for STUN, each in turn.
const maxUsedRelays = 4

func (t *traversal) noteRelay(addr netip.AddrPort) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.used = slices.DeleteFunc(t.used, func(a netip.AddrPort) bool { return a == addr })
	t.used = append(t.used, addr)
	if len(t.used) > maxUsedRelays {
		t.used = slices.Delete(t.used, 0, len(t.used)-maxUsedRelays)
	}
}

// acceptCircuits routes the circuits peers open to us; the Noise
// handshake that follows over one makes an inbound Conn.
func (t *traversal) acceptCircuits() {
	for {
		c, err := t.relay.Accept(t.ctx)
		if err != nil {
			return
		}
		t.noteRelay(c.Addr())
		t.route(c)
	}
}

// route hands what crosses a circuit to its owner: punch coordination to
// the Puncher, Noise packets to the Noise transport (with the circuit as
// the path, so the session runs over it).
func (t *traversal) route(c *relay.Circuit) {
	n := t.noiseT()
	c.SetHandler(func(pkt []byte) {
		if len(pkt) == 0 {
			return
		}
		switch typ := pkt[0]; {
		case typ == transport.TypePunch:
			if t.punch != nil {
				t.punch.HandleSignal(pkt, c)
			}
		case n != nil && typ >= transport.TypeNoiseInitiation && typ <= transport.TypeNoiseData:
			n.HandleVia(pkt, c)
		}
	})
}

// sessionPath is the path a session takes for a punched one: the Noise
// transport's own direct path when the punch went through the port; the
// punched path itself, its packets handed to Noise, when it went through
// an extra socket of a birthday punch.
func (t *traversal) sessionPath(p *punch.Path) security.Path {
	n := t.noiseT()
	if p.OnPort() {
		return n.DirectPath(p.Addr())
	}
	p.SetHandler(func(pkt []byte) {
		if len(pkt) > 0 && pkt[0] >= transport.TypeNoiseInitiation && pkt[0] <= transport.TypeNoiseData {
			n.HandleVia(pkt, p)
		}
	})
	return p
}

// acceptPunches takes the results of the punches peers started with us:
// a punched path on an extra socket gets its packets routed to Noise (the
// peer's session moves there and ours follows); the path replaces the
// peer's earlier one.
func (t *traversal) acceptPunches() {
	for {
		r, err := t.punch.Accept(t.ctx)
		if err != nil {
			return
		}
		c, _ := r.Channel.(*relay.Circuit)
		if r.Err != nil || c == nil {
			if r.Path != nil {
				r.Path.Close()
			}
			t.log.Debug("punch requested by a peer failed", "result", r)
			continue
		}
		t.sessionPath(r.Path)
		t.mu.Lock()
		old := t.responded[c.Peer()]
		t.responded[c.Peer()] = r.Path
		t.mu.Unlock()
		if old != nil && old != r.Path {
			old.Close()
		}
		t.log.Debug("punched at a peer's request", "peer", c.Peer(), "result", r)
	}
}

// describe is the Puncher's Self: this host's public address and mapping
// from STUN, asked of the configured STUN servers and the relays we use
// (every go-ipv8 host answers STUN). Filtering is not known here.
func (t *traversal) describe(ctx context.Context) (punch.Info, error) {
	servers := slices.Clone(t.cfg.STUNServers)
	t.mu.Lock()
	for _, r := range t.relays {
		if t.reserved[r.addr] {
			servers = append(servers, r.addr)
		}
	}
	servers = append(servers, t.used...)
	t.mu.Unlock()
	slices.SortFunc(servers, func(a, b netip.AddrPort) int { return a.Compare(b) })
	servers = slices.Compact(servers)
	if len(servers) == 0 {
		return punch.Info{}, errors.New("ipv8: no STUN server or relay to learn this host's public address from")
	}
	var local []netip.AddrPort
	if la := t.port.LocalAddr(); la.IsValid() && !la.Addr().IsUnspecified() {
		local = append(local, la)
	}
	return punch.Observe(ctx, t.stun, servers, nat.Unknown, local...)
}

// Upgrade (host.NATTraversal) follows a Conn that starts relayed until ctx
// ends. The end that opened the circuit punches and runs the Selector; the
// other answers (acceptPunches) and follows. At the end the circuit and
// the punched path close.
func (t *traversal) Upgrade(ctx context.Context, c transport.Conn) {
	n := t.noiseT()
	if n == nil {
		return
	}
	s, ok := n.SessionWith(c.RemotePeer())
	if !ok {
		return
	}
	ps, ok := s.(security.PathSetter)
	if !ok {
		return
	}
	circ, ok := ps.Path().(*relay.Circuit)
	if !ok {
		return // not relayed (any more)
	}
	defer circ.Close()
	if t.punch == nil || !circ.Initiator() {
		<-ctx.Done()
		t.mu.Lock()
		p := t.responded[c.RemotePeer()]
		delete(t.responded, c.RemotePeer())
		t.mu.Unlock()
		if p != nil {
			p.Close()
		}
		return
	}
	t.runUpgrade(ctx, c, s, ps, circ)
}

// announce makes the peer's session follow ours to the path it just moved
// to, even when the Conn has nothing to send: Noise moves a session on the
// first authenticated packet over a new path, and an empty payload is a
// keepalive (authenticated, not delivered). Without it an idle peer would
// keep sending over the old path, and once our session's pin ran out
// (noise.PathPinTime) its packets would pull our session back there. Sent
// three times over the first half second, in case one is lost.
func announce(s security.Session) {
	s.Send(nil)
	for _, d := range []time.Duration{100 * time.Millisecond, 500 * time.Millisecond} {
		time.AfterFunc(d, func() { s.Send(nil) })
	}
}

// runUpgrade punches over circ and keeps the session on the better path;
// when the direct path dies and the Selector moves the session back to the
// relay, it punches again.
func (t *traversal) runUpgrade(ctx context.Context, c transport.Conn, s security.Session, ps security.PathSetter, circ *relay.Circuit) {
	log := t.log.With("peer", c.RemotePeer().ShortString())
	var sel *pathsel.Selector
	var direct *punch.Path
	defer func() {
		if direct != nil {
			direct.Close()
		}
	}()
	selDone := make(chan struct{})
	for failures := 0; ; {
		res := t.punchOnce(ctx, circ, log)
		if ctx.Err() != nil {
			return
		}
		if res == nil {
			failures++
			if failures >= punchAttempts && sel == nil {
				log.Debug("hole punching gave up; the connection stays relayed")
				<-ctx.Done()
				return
			}
			if !sleep(ctx, punchRetry<<min(failures-1, 4)) {
				return
			}
			continue
		}
		failures = 0
		if direct != nil {
			direct.Close()
		}
		direct = res.Path
		cand := pathsel.Candidate{Path: t.sessionPath(res.Path), Ping: res.Path.Ping, RTT: res.ProbeRTT}
		if sel == nil {
			var err error
			sel, err = pathsel.New(pathsel.Config{
				SetPath:  func(p pathsel.Path) error { return ps.SetPath(p) },
				Relay:    pathsel.Candidate{Path: circ, Ping: func(ctx context.Context) (time.Duration, error) { return t.punch.PingChannel(ctx, circ) }, RTT: res.ChannelRTT},
				Interval: selectorEvery,
				OnSwitch: func(transport.PathKind, pathsel.Sample, pathsel.Sample) { announce(s) },
				Logger:   t.cfg.Logger,
			})
			if err != nil {
				log.Warn("path selector", "err", err)
				return
			}
			if err := sel.SetDirect(cand); err != nil {
				return
			}
			go func() {
				defer close(selDone)
				sel.Run(ctx)
			}()
			defer func() { <-selDone }()
		} else if err := sel.SetDirect(cand); err != nil {
			return
		}
		// Watch the direct path: once the Selector has had to fall back
		// to the relay because it died, punch again.
		for {
			if !sleep(ctx, repunchAfter) {
				return
			}
			select {
			case <-selDone:
				<-ctx.Done() // the session is gone
				return
			default:
			}
			d, _ := sel.Samples()
			if sel.Current() == transport.PathRelayed && d.Fails >= 3 {
				log.Debug("the direct path died; punching again")
				break
			}
		}
	}
}

// punchOnce runs one punch over circ; nil when it found no path.
func (t *traversal) punchOnce(ctx context.Context, circ *relay.Circuit, log *slog.Logger) *punch.Result {
	res, err := t.punch.Initiate(ctx, circ)
	if err != nil {
		log.Debug("hole punch failed", "err", err)
		return nil
	}
	if res.Err != nil {
		log.Debug("hole punch found no path", "result", res)
		return nil
	}
	log.Debug("hole punched", "result", res)
	return res
}

// sleep waits d or until ctx ends (false then).
func sleep(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

var (
	_ udp.CircuitDialer = (*traversal)(nil)
	_ host.NATTraversal = (*traversal)(nil)
	_ udp.Circuit       = (*relay.Circuit)(nil)
)
