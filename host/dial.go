package host

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocol"
	"github.com/ipv8/go-ipv8/transport"
)

type earlyDataKey struct{}

// WithEarlyData lets Connect and NewStream under ctx dial with 0-RTT where
// the transport can (transport.EarlyDialer): the call returns before the
// peer has proved its identity, and the first stream's data rides in the
// handshake's first flight, so a request's reply can arrive one round trip
// after the dial starts. If the peer turns out not to be the one named, the
// Conn closes and the stream fails. 0-RTT data can be replayed to the peer:
// use it only for requests that are safe to receive twice (QUIC's 0-RTT has
// the same caveat).
func WithEarlyData(ctx context.Context) context.Context {
	return context.WithValue(ctx, earlyDataKey{}, true)
}

func earlyData(ctx context.Context) bool {
	v, _ := ctx.Value(earlyDataKey{}).(bool)
	return v
}

// dialCall is one dial in flight; concurrent Connects to the same peer
// wait for it instead of dialling again.
type dialCall struct {
	done chan struct{}
	conn transport.Conn
	err  error
}

// Connect makes sure the host has a Conn to ai.ID, dialling the addresses
// in ai (added to the peerstore) and those the peerstore knows. Concurrent
// calls for one peer share one dial.
func (h *Host) Connect(ctx context.Context, ai peer.AddrInfo) error {
	_, err := h.connect(ctx, ai)
	return err
}

func (h *Host) connect(ctx context.Context, ai peer.AddrInfo) (transport.Conn, error) {
	if err := ai.ID.Validate(); err != nil {
		return nil, fmt.Errorf("host: connect: %w", err)
	}
	if ai.ID == h.id {
		return nil, ErrDialSelf
	}
	addrs := make([]ma.Multiaddr, 0, len(ai.Addrs))
	for _, a := range ai.Addrs {
		tr, id, err := peer.SplitAddr(a)
		if err != nil {
			return nil, fmt.Errorf("host: connect: %w", err)
		}
		if id != "" && id != ai.ID {
			return nil, fmt.Errorf("host: connect: address %s names peer %s, not %s", a, id, ai.ID)
		}
		addrs = append(addrs, tr)
	}
	h.ps.AddAddrs(ai.ID, addrs, TempAddrTTL)

	if e := h.liveConn(ai.ID); e != nil {
		return e.conn, nil
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	call, inFlight := h.dials[ai.ID]
	if !inFlight {
		call = &dialCall{done: make(chan struct{})}
		h.dials[ai.ID] = call
	}
	h.mu.Unlock()

	if inFlight {
		select {
		case <-call.done:
			return call.conn, call.err
		case <-ctx.Done():
			return nil, fmt.Errorf("host: connect to %s: %w", ai.ID, ctxErr(ctx))
		}
	}
	// The caller that starts the dial runs it on its own goroutine (a
	// hand-off to another costs a wake-up on the connect path); the dial
	// follows the host's lifetime and this caller's context, and later
	// callers share its result.
	dctx, cancel := context.WithCancel(h.ctx)
	stop := context.AfterFunc(ctx, cancel)
	if h.cfg.DialTimeout > 0 {
		var c2 context.CancelFunc
		dctx, c2 = context.WithTimeout(dctx, h.cfg.DialTimeout)
		defer c2()
	}
	c, err := h.dialPeer(dctx, ai.ID, earlyData(ctx))
	stop()
	cancel()
	if err == nil {
		c = h.addConn(c, false)
		if c == nil {
			err = ErrClosed
		}
	}
	h.mu.Lock()
	delete(h.dials, ai.ID)
	h.mu.Unlock()
	call.conn, call.err = c, err
	close(call.done)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("host: connect to %s: %w", ai.ID, ctxErr(ctx))
	}
	return c, err
}

// dialPeer dials the peer's known addresses, best first, starting the next
// one DialStagger after the previous if it has not succeeded; the first
// Conn wins and the other attempts are cancelled.
func (h *Host) dialPeer(ctx context.Context, p peer.ID, early bool) (transport.Conn, error) {
	type candidate struct {
		addr ma.Multiaddr
		t    transport.Transport
	}
	var cands []candidate
	for _, a := range h.ps.Addrs(p) {
		for _, t := range h.transports {
			if t.CanDial(a) {
				cands = append(cands, candidate{a, t})
				break
			}
		}
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("%w %s (known: %v)", ErrNoAddresses, p, h.ps.Addrs(p))
	}
	slices.SortStableFunc(cands, func(a, b candidate) int { return addrRank(a.addr) - addrRank(b.addr) })
	dialOne := func(ctx context.Context, c candidate) (transport.Conn, error) {
		if ed, ok := c.t.(transport.EarlyDialer); ok && early {
			return ed.DialEarly(ctx, c.addr, p)
		}
		return c.t.Dial(ctx, c.addr, p)
	}
	if len(cands) == 1 {
		// Nothing to race: dial on this goroutine.
		c, err := dialOne(ctx, cands[0])
		if err != nil {
			if ctx.Err() != nil && !errors.Is(err, transport.ErrWrongPeer) {
				return nil, fmt.Errorf("host: dial %s: %w (%s: %v)", p, ctxErr(ctx), cands[0].addr, err)
			}
			return nil, fmt.Errorf("host: dial %s: %w", p, err)
		}
		return c, nil
	}

	type result struct {
		c    transport.Conn
		addr ma.Multiaddr
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan result, len(cands))
	next, pending := 0, 0
	var stagger <-chan time.Time
	start := func() {
		c := cands[next]
		next++
		pending++
		go func() {
			conn, err := dialOne(ctx, c)
			results <- result{conn, c.addr, err}
		}()
		if next < len(cands) {
			if h.cfg.DialStagger > 0 {
				stagger = time.After(h.cfg.DialStagger)
			} else {
				stagger = nil
			}
		}
	}
	start()
	var errs []string
	var wrongPeer, lastErr error
	for pending > 0 {
		select {
		case r := <-results:
			pending--
			if r.err == nil {
				// Close the Conns of attempts that finish later.
				go func(n int) {
					for range n {
						// A transport with one session per peer may
						// hand several attempts the same Conn.
						if r2 := <-results; r2.err == nil && r2.c != r.c {
							r2.c.CloseWithError(transport.CodeDuplicateConn, "another address won")
						}
					}
				}(pending)
				return r.c, nil
			}
			lastErr = r.err
			if errors.Is(r.err, transport.ErrWrongPeer) {
				wrongPeer = r.err
			}
			errs = append(errs, fmt.Sprintf("%s: %v", r.addr, r.err))
			if next < len(cands) && (pending == 0 || h.cfg.DialStagger == 0) {
				start()
			}
		case <-stagger:
			if next < len(cands) {
				start()
			}
		}
	}
	if len(errs) == 1 && ctx.Err() == nil {
		return nil, fmt.Errorf("host: dial %s: %w", p, lastErr)
	}
	if wrongPeer != nil {
		return nil, fmt.Errorf("host: dial %s: %w (all attempts: %s)", p, wrongPeer, strings.Join(errs, "; "))
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("host: dial %s: %w (%s)", p, ctxErr(ctx), strings.Join(errs, "; "))
	}
	return nil, fmt.Errorf("host: dial %s failed: %s", p, strings.Join(errs, "; "))
}

// addrRank orders dial candidates: direct addresses before relayed ones
// (/p2p-circuit: dialled after the direct ones had their stagger), the
// raw-UDP transport (cheaper sessions) before QUIC, loopback and private
// addresses before public ones.
func addrRank(a ma.Multiaddr) int {
	r := 0
	for _, c := range a {
		if c.Code() == ma.P_CIRCUIT {
			r += 100
			break
		}
	}
	if _, err := a.ValueForProtocol(peer.P_IPV8); err != nil {
		r += 10
	}
	if ap, _, err := transport.ToAddrPort(a); err == nil {
		switch ip := ap.Addr(); {
		case ip.IsLoopback():
		case ip.IsPrivate() || ip.IsLinkLocalUnicast():
			r += 1
		default:
			r += 2
		}
	}
	return r
}

// NewStream opens a stream to p for the first of protos that p is known to
// serve (the first of protos when p's protocols are not known yet),
// connecting first when needed. The protocol ID rides in the stream's
// opening: if p does not serve it after all, the stream's first Read or
// Write fails with an error wrapping ErrProtocolNotSupported that names it.
func (h *Host) NewStream(ctx context.Context, p peer.ID, protos ...protocol.ID) (transport.Stream, error) {
	if len(protos) == 0 {
		return nil, errors.New("host: NewStream needs at least one protocol")
	}
	for _, pr := range protos {
		if err := pr.Validate(); err != nil {
			return nil, err
		}
	}
	if h.isClosed() {
		return nil, ErrClosed
	}
	proto := protos[0]
	if len(protos) > 1 {
		found := false
		for _, pr := range protos {
			if ok, known := h.ps.SupportsProtocol(p, pr); known && ok {
				proto, found = pr, true
				break
			}
		}
		if _, known := h.ps.SupportsProtocol(p, protos[0]); known && !found {
			return nil, fmt.Errorf("%w: %s serves none of %v", ErrProtocolNotSupported, p, protos)
		}
	}
	for attempt := 0; ; attempt++ {
		e, err := h.connEntryFor(ctx, p)
		if err != nil {
			return nil, err
		}
		s, err := e.conn.OpenStream(ctx, proto)
		if err == nil {
			return h.track(e, s), nil
		}
		if attempt > 0 || ctx.Err() != nil || !errors.Is(err, transport.ErrConnClosed) {
			return nil, fmt.Errorf("host: new stream to %s for %s: %w", p, proto, err)
		}
		// The Conn ended under us: connEnded forgets it; dial again once.
		h.connEnded(e)
	}
}

// connEntryFor returns the entry of the live Conn to p, connecting first
// when there is none. A Conn that ended as soon as it was made (an early
// dial whose handshake failed) comes back unregistered, so that using it
// reports why it ended.
func (h *Host) connEntryFor(ctx context.Context, p peer.ID) (*connEntry, error) {
	if e := h.liveConn(p); e != nil {
		return e, nil
	}
	c, err := h.connect(ctx, peer.AddrInfo{ID: p})
	if err != nil {
		return nil, err
	}
	if e := h.liveConn(p); e != nil {
		return e, nil
	}
	return &connEntry{conn: c}, nil
}
