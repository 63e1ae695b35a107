package relay

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/ipv8/go-ipv8/peer"
)

// client is the Endpoint's client role: requests to relays (each a nonce
// waiting for its answer), reservations kept fresh, circuits.
type client struct {
	e *Endpoint

	mu       sync.Mutex
	waiting  map[uint64]chan Msg // by request nonce
	cookies  map[netip.AddrPort]cookieEntry
	resv     map[netip.AddrPort]*Reservation
	circuits map[circuitKey]*Circuit
	lastSent map[netip.AddrPort]time.Time // relays we need a mapping to
	acceptQ  chan *Circuit
}

type cookieEntry struct {
	cookie [CookieLen]byte
	at     time.Time
}

type circuitKey struct {
	relay netip.AddrPort
	id    uint32
}

// A cookie is reused for this long (it stays valid for at least one
// rotation of the relay's secret).
const cookieReuse = cookieRotation / 2

func (c *client) init(e *Endpoint) {
	c.e = e
	c.waiting = map[uint64]chan Msg{}
	c.cookies = map[netip.AddrPort]cookieEntry{}
	c.resv = map[netip.AddrPort]*Reservation{}
	c.circuits = map[circuitKey]*Circuit{}
	c.lastSent = map[netip.AddrPort]time.Time{}
	c.acceptQ = make(chan *Circuit, e.cfg.AcceptBacklog)
}

// handle takes an answer or notice from a relay (on the read goroutine).
func (c *client) handle(m *Msg, from netip.AddrPort) {
	switch m.Kind {
	case KindChallenge, KindReserved, KindConnected, KindError, KindPong:
		if m.Kind == KindError && m.Nonce == 0 && m.Code == CodeUnknownCircuit {
			c.strayData(m, from)
			return
		}
		c.mu.Lock()
		ch := c.waiting[m.Nonce]
		c.mu.Unlock()
		if ch != nil {
			select {
			case ch <- *m:
			default:
			}
		}
		if m.Kind == KindPong {
			c.onPong(m, from)
		}
	case KindIncoming:
		c.incoming(m, from)
	case KindClose:
		c.mu.Lock()
		ci := c.circuits[circuitKey{from, m.Circuit}]
		c.mu.Unlock()
		if ci != nil {
			ci.end(&Error{Relay: from, Code: m.Code}, false)
		}
	}
}

// data hands a relayed datagram to its circuit.
func (c *client) data(pkt []byte, from netip.AddrPort) {
	id, payload, err := ParseData(pkt)
	if err != nil {
		return
	}
	c.mu.Lock()
	ci := c.circuits[circuitKey{from, id}]
	c.mu.Unlock()
	if ci != nil {
		ci.deliver(payload)
	}
}

// request sends m to relay until an answer with m's nonce arrives,
// retransmitting from 250 ms on, doubling.
func (c *client) request(ctx context.Context, relay netip.AddrPort, m *Msg) (Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, c.e.cfg.RequestTimeout)
	defer cancel()
	ch := make(chan Msg, 1)
	c.mu.Lock()
	c.waiting[m.Nonce] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiting, m.Nonce)
		c.mu.Unlock()
	}()
	rto := 250 * time.Millisecond
	for {
		c.e.send(m, relay)
		c.noteSent(relay)
		t := time.NewTimer(rto)
		select {
		case r := <-ch:
			t.Stop()
			return r, nil
		case <-ctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return Msg{}, fmt.Errorf("%w: %s to %s", ErrTimeout, m.Kind, relay)
			}
			return Msg{}, ctx.Err()
		case <-c.e.done:
			t.Stop()
			return Msg{}, ErrClosed
		case <-t.C:
			rto = min(2*rto, 2*time.Second)
		}
	}
}

func (c *client) noteSent(relay netip.AddrPort) {
	c.mu.Lock()
	if _, ok := c.lastSent[relay]; ok {
		c.lastSent[relay] = c.e.clk.Now()
	}
	c.mu.Unlock()
}

// cookie returns a cookie for our address at relay (cached for a while).
func (c *client) cookie(ctx context.Context, relay netip.AddrPort, fresh bool) ([CookieLen]byte, error) {
	now := c.e.clk.Now()
	c.mu.Lock()
	ce, ok := c.cookies[relay]
	c.mu.Unlock()
	if ok && !fresh && now.Sub(ce.at) < cookieReuse {
		return ce.cookie, nil
	}
	r, err := c.request(ctx, relay, &Msg{Kind: KindHello, Nonce: c.e.nonce()})
	if err != nil {
		return [CookieLen]byte{}, err
	}
	if r.Kind != KindChallenge {
		return [CookieLen]byte{}, fmt.Errorf("relay %s: hello answered with %s", relay, r.Kind)
	}
	c.mu.Lock()
	c.cookies[relay] = cookieEntry{r.Cookie, now}
	c.mu.Unlock()
	return r.Cookie, nil
}

// signed sends a RESERVE or CONNECT (built by fill) with a cookie and our
// signature, fetching a new cookie once if the relay says ours is stale.
func (c *client) signed(ctx context.Context, relay netip.AddrPort, fill func(*Msg)) (Msg, error) {
	for attempt := 0; ; attempt++ {
		ck, err := c.cookie(ctx, relay, attempt > 0)
		if err != nil {
			return Msg{}, err
		}
		m := Msg{Nonce: c.e.nonce(), Cookie: ck}
		copy(m.Key[:], c.e.key.Public().Ed25519())
		fill(&m)
		copy(m.Sig[:], c.e.key.Sign(SignedBytes(&m)))
		r, err := c.request(ctx, relay, &m)
		if err != nil {
			return Msg{}, err
		}
		if r.Kind == KindError && r.Code == CodeBadCookie && attempt == 0 {
			continue
		}
		if r.Kind == KindError {
			return r, &Error{Relay: relay, Code: r.Code}
		}
		return r, nil
	}
}

// Reservation is a slot held at a relay: peers can open circuits to us
// through it. The endpoint refreshes it before it expires, and at once
// when the relay sees us at a new address (our address changed).
type Reservation struct {
	c     *client
	Relay netip.AddrPort

	mu       sync.Mutex
	observed netip.AddrPort
	expires  time.Time
	ttl      time.Duration
	limit    Limit
	closed   bool
	busy     bool // a refresh is running
}

// Reserve takes a reservation at relay (or refreshes the one held there).
func (e *Endpoint) Reserve(ctx context.Context, relay netip.AddrPort) (*Reservation, error) {
	c := &e.cl
	r, err := c.signed(ctx, relay, func(m *Msg) { m.Kind = KindReserve })
	if err != nil {
		return nil, err
	}
	if r.Kind != KindReserved {
		return nil, fmt.Errorf("relay %s: reserve answered with %s", relay, r.Kind)
	}
	now := e.clk.Now()
	c.mu.Lock()
	res := c.resv[relay]
	if res == nil {
		res = &Reservation{c: c, Relay: relay}
		c.resv[relay] = res
	}
	c.lastSent[relay] = now
	c.mu.Unlock()
	res.mu.Lock()
	res.observed = r.Observed
	res.ttl = time.Duration(r.TTL) * time.Second
	res.expires = now.Add(res.ttl)
	res.limit = r.Limit
	res.closed = false
	res.mu.Unlock()
	return res, nil
}

// Observed is our address as the relay saw it.
func (r *Reservation) Observed() netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.observed
}

// Expires is when the relay drops the reservation unless refreshed.
func (r *Reservation) Expires() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.expires
}

// Limit is what each circuit through the relay may carry.
func (r *Reservation) Limit() Limit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.limit
}

// Close stops refreshing the reservation (the relay lets it expire).
func (r *Reservation) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	c := r.c
	c.mu.Lock()
	if c.resv[r.Relay] == r {
		delete(c.resv, r.Relay)
	}
	c.mu.Unlock()
	c.forgetIfUnused(r.Relay)
	return nil
}

// refresh renews the reservation in the background (once at a time).
func (r *Reservation) refresh(why string) {
	r.mu.Lock()
	if r.closed || r.busy {
		r.mu.Unlock()
		return
	}
	r.busy = true
	r.mu.Unlock()
	e := r.c.e
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.RequestTimeout)
		defer cancel()
		_, err := e.Reserve(ctx, r.Relay)
		if err != nil && !errors.Is(err, ErrClosed) {
			e.log.Debug("relay: refreshing reservation failed", "relay", r.Relay, "why", why, "err", err)
		}
		r.mu.Lock()
		r.busy = false
		r.mu.Unlock()
	}()
}

// onPong notices that our address changed: the relay sees us elsewhere.
func (c *client) onPong(m *Msg, from netip.AddrPort) {
	c.mu.Lock()
	r := c.resv[from]
	c.mu.Unlock()
	if r == nil {
		return
	}
	r.mu.Lock()
	moved := r.observed.IsValid() && m.Observed != r.observed
	r.mu.Unlock()
	if moved {
		r.refresh("address changed")
	}
}

// strayData: the relay got DATA of one of our circuits from an address
// that is not the circuit's end — ours changed. Re-reserving from here
// (signed, over a cookie for the new address) moves our circuits.
func (c *client) strayData(m *Msg, from netip.AddrPort) {
	c.mu.Lock()
	_, ours := c.circuits[circuitKey{from, m.Circuit}]
	r := c.resv[from]
	if ours && r == nil {
		r = &Reservation{c: c, Relay: from}
		c.resv[from] = r
	}
	c.mu.Unlock()
	if ours {
		r.refresh("the relay sees our circuit from a new address")
	}
}

// Connect opens a circuit to target through relay, where target holds a
// reservation.
func (e *Endpoint) Connect(ctx context.Context, relay netip.AddrPort, target peer.ID) (*Circuit, error) {
	tk, err := target.Ed25519()
	if err != nil {
		return nil, err
	}
	c := &e.cl
	c.mu.Lock()
	if _, ok := c.lastSent[relay]; !ok {
		c.lastSent[relay] = e.clk.Now()
	}
	c.mu.Unlock()
	r, err := c.signed(ctx, relay, func(m *Msg) {
		m.Kind = KindConnect
		copy(m.Target[:], tk)
	})
	if err != nil {
		c.forgetIfUnused(relay)
		return nil, err
	}
	if r.Kind != KindConnected {
		c.forgetIfUnused(relay)
		return nil, fmt.Errorf("relay %s: connect answered with %s", relay, r.Kind)
	}
	ci := newCircuit(e, relay, r.Circuit, target, r.Observed, r.Limit, true)
	c.mu.Lock()
	if old := c.circuits[circuitKey{relay, r.Circuit}]; old != nil {
		c.mu.Unlock()
		return old, nil
	}
	c.circuits[circuitKey{relay, r.Circuit}] = ci
	c.mu.Unlock()
	return ci, nil
}

// incoming accepts a circuit opened to us through a relay we hold a
// reservation at (any other INCOMING is ignored).
func (c *client) incoming(m *Msg, from netip.AddrPort) {
	c.mu.Lock()
	if c.resv[from] == nil {
		c.mu.Unlock()
		return
	}
	k := circuitKey{from, m.Circuit}
	ci := c.circuits[k]
	fresh := ci == nil
	if fresh {
		ci = newCircuit(c.e, from, m.Circuit, peer.IDFromEd25519(ed25519.PublicKey(m.Key[:])), m.Observed, m.Limit, false)
		c.circuits[k] = ci
	}
	c.mu.Unlock()
	c.e.send(&Msg{Kind: KindAccept, Circuit: m.Circuit}, from)
	c.noteSent(from)
	if !fresh {
		return
	}
	select {
	case c.acceptQ <- ci:
	default:
		c.e.log.Debug("relay: accept backlog full, circuit closed", "relay", from)
		ci.Close()
	}
}

// Accept waits for the next circuit a peer opened to us.
func (e *Endpoint) Accept(ctx context.Context) (*Circuit, error) {
	select {
	case ci := <-e.cl.acceptQ:
		return ci, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-e.done:
		return nil, ErrClosed
	}
}

// removeCircuit forgets a closed circuit.
func (c *client) removeCircuit(ci *Circuit) {
	c.mu.Lock()
	k := circuitKey{ci.relay, ci.id}
	if c.circuits[k] == ci {
		delete(c.circuits, k)
	}
	c.mu.Unlock()
	c.forgetIfUnused(ci.relay)
}

// forgetIfUnused stops keepalives to a relay we hold nothing at.
func (c *client) forgetIfUnused(relay netip.AddrPort) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.resv[relay] != nil {
		return
	}
	for k := range c.circuits {
		if k.relay == relay {
			return
		}
	}
	delete(c.lastSent, relay)
}

// housekeeping pings relays we sent nothing to for a keepalive interval
// and refreshes reservations at three quarters of their life.
func (c *client) housekeeping(now time.Time) {
	var pings []netip.AddrPort
	var refresh []*Reservation
	c.mu.Lock()
	for relay, last := range c.lastSent {
		if now.Sub(last) >= c.e.cfg.Keepalive {
			pings = append(pings, relay)
			c.lastSent[relay] = now
		}
	}
	for _, r := range c.resv {
		r.mu.Lock()
		if !r.expires.IsZero() && !now.Before(r.expires.Add(-r.ttl/4)) {
			refresh = append(refresh, r)
		}
		r.mu.Unlock()
	}
	c.mu.Unlock()
	for _, relay := range pings {
		c.e.send(&Msg{Kind: KindPing, Nonce: c.e.nonce()}, relay)
	}
	for _, r := range refresh {
		r.refresh("expiry")
	}
}

// Ping sends a keepalive to relay and waits for the answer; it returns the
// round-trip time and our address as the relay sees it.
func (e *Endpoint) Ping(ctx context.Context, relay netip.AddrPort) (time.Duration, netip.AddrPort, error) {
	start := e.clk.Now()
	r, err := e.cl.request(ctx, relay, &Msg{Kind: KindPing, Nonce: e.nonce()})
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	return e.clk.Now().Sub(start), r.Observed, nil
}

func (c *client) shutdown() {
	c.mu.Lock()
	cs := make([]*Circuit, 0, len(c.circuits))
	for _, ci := range c.circuits {
		cs = append(cs, ci)
	}
	c.mu.Unlock()
	for _, ci := range cs {
		ci.end(ErrClosed, true)
	}
}
