package stun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/ipv8/go-ipv8/internal/clock"
	"github.com/ipv8/go-ipv8/transport"
)

// Errors of client transactions, usable with errors.Is.
var (
	// ErrTimeout: no response within the transaction's time.
	ErrTimeout = errors.New("stun: no response (timeout)")
	// ErrClosed: the Endpoint was closed.
	ErrClosed = errors.New("stun: endpoint closed")
)

// EndpointConfig tunes an Endpoint. The zero value serves and uses the
// real clock.
type EndpointConfig struct {
	// NoServe stops the Endpoint from answering Binding requests (it still
	// runs client transactions).
	NoServe bool
	// AnswerRate bounds the Binding responses per second, so that the port
	// cannot be used to flood (default 200, burst the same).
	AnswerRate int
	Clock      clock.Clock
	Logger     *slog.Logger
}

// Endpoint is STUN on the host's port: it owns the port's STUN handler,
// answers Binding requests (peers use every host as a STUN server) and
// matches responses to its own transactions.
type Endpoint struct {
	port transport.Port
	cfg  EndpointConfig
	clk  clock.Clock
	log  *slog.Logger

	mu      sync.Mutex
	pending map[[12]byte]chan<- received
	// echo holds the transaction IDs of requests sent to our own public
	// address: seeing one of them come back proves hairpinning.
	echo   map[[12]byte]chan<- received
	closed bool
	// token bucket for answers
	tokens float64
	last   time.Time
}

// received is one response (or hairpinned request) for a transaction.
type received struct {
	resp Response
	from netip.AddrPort
}

// Attach makes an Endpoint on p and registers it as p's STUN handler. The
// Host calls it once with its port; Close unregisters it.
func Attach(p transport.Port, cfg EndpointConfig) *Endpoint {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AnswerRate <= 0 {
		cfg.AnswerRate = 200
	}
	e := &Endpoint{port: p, cfg: cfg, clk: cfg.Clock, log: cfg.Logger,
		pending: map[[12]byte]chan<- received{}, echo: map[[12]byte]chan<- received{},
		tokens: float64(cfg.AnswerRate)}
	p.HandleSTUN(e.handle)
	return e
}

// Close unregisters the handler; transactions in flight fail with ErrClosed.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	e.port.HandleSTUN(nil)
	return nil
}

// LocalAddr is the address of the port.
func (e *Endpoint) LocalAddr() netip.AddrPort { return e.port.LocalAddr() }

// handle runs on the port's read goroutine.
func (e *Endpoint) handle(pkt []byte, from netip.AddrPort) {
	if len(pkt) < 20 {
		return
	}
	cls := (pkt[0]&0x01)<<1 | (pkt[1]&0x10)>>4 // C1 C0 of the message type
	if cls == 0 {                              // request
		e.onRequest(pkt, from)
		return
	}
	if cls == 1 { // indication: nothing to do
		return
	}
	resp, err := ParseResponse(pkt)
	if err != nil {
		e.log.Debug("stun: dropped response", "from", from, "err", err)
		return
	}
	e.mu.Lock()
	ch := e.pending[resp.TxID]
	e.mu.Unlock()
	if ch != nil {
		select {
		case ch <- received{resp, from}:
		default:
		}
	}
}

func (e *Endpoint) onRequest(pkt []byte, from netip.AddrPort) {
	req, err := ParseRequest(pkt)
	if err != nil {
		return
	}
	e.mu.Lock()
	ch := e.echo[req.TxID]
	serve := !e.cfg.NoServe && !e.closed && e.take()
	e.mu.Unlock()
	if ch != nil {
		select {
		case ch <- received{Response{TxID: req.TxID}, from}:
		default:
		}
		return // our own hairpinned request: answering it would loop
	}
	if !serve {
		return
	}
	r, ok := answer(pkt, from, serverAddrs{local: e.port.LocalAddr()}, Software)
	if !ok {
		return
	}
	if err := e.port.WriteTo(r.pkt, r.to); err != nil {
		e.log.Debug("stun: answer not sent", "to", r.to, "err", err)
	}
}

// take spends one answer token; e.mu is held.
func (e *Endpoint) take() bool {
	now := e.clk.Now()
	rate := float64(e.cfg.AnswerRate)
	if !e.last.IsZero() {
		e.tokens = min(rate, e.tokens+now.Sub(e.last).Seconds()*rate)
	}
	e.last = now
	if e.tokens < 1 {
		return false
	}
	e.tokens--
	return true
}

// Timing is how a client transaction retransmits: sends at 0, RTO, 3·RTO,
// 7·RTO … (doubling gaps) until Timeout has passed since the first.
type Timing struct {
	RTO     time.Duration
	Timeout time.Duration
}

// DefaultTiming suits the Internet: 4 sends within 2.4 s.
var DefaultTiming = Timing{RTO: 300 * time.Millisecond, Timeout: 2400 * time.Millisecond}

// Binding runs one Binding transaction with server and returns its
// response (a success, or an error response with Error set) and the
// address the response came from. It fails with ErrTimeout when nothing
// came back.
func (e *Endpoint) Binding(ctx context.Context, server netip.AddrPort, req Request, t Timing) (Response, netip.AddrPort, error) {
	if req.TxID == ([12]byte{}) {
		req.TxID = NewTxID()
	}
	ch := make(chan received, 1)
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return Response{}, netip.AddrPort{}, ErrClosed
	}
	e.pending[req.TxID] = ch
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.pending, req.TxID)
		e.mu.Unlock()
	}()
	r, err := e.transact(ctx, server, req, t, ch)
	if err != nil {
		return Response{}, netip.AddrPort{}, fmt.Errorf("stun: Binding to %s: %w", server, err)
	}
	return r.resp, r.from, nil
}

// Hairpin sends a Binding request to the port's own public address and
// reports whether it came back (to the port itself: the request, or the
// answer our own server gave it).
func (e *Endpoint) Hairpin(ctx context.Context, public netip.AddrPort, t Timing) (bool, error) {
	req := Request{TxID: NewTxID()}
	ch := make(chan received, 1)
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return false, ErrClosed
	}
	e.echo[req.TxID] = ch
	e.pending[req.TxID] = ch
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.echo, req.TxID)
		delete(e.pending, req.TxID)
		e.mu.Unlock()
	}()
	_, err := e.transact(ctx, public, req, t, ch)
	if errors.Is(err, ErrTimeout) {
		return false, nil
	}
	return err == nil, err
}

// transact sends req to server on the retransmission schedule until
// something arrives on ch, the time is up or ctx ends.
func (e *Endpoint) transact(ctx context.Context, server netip.AddrPort, req Request, t Timing, ch <-chan received) (received, error) {
	if t.RTO <= 0 {
		t = DefaultTiming
	}
	pkt := req.Append(nil)
	start := e.clk.Now()
	gap := t.RTO
	for {
		if err := e.port.WriteTo(pkt, server); err != nil {
			e.log.Debug("stun: send failed", "to", server, "err", err)
		}
		left := t.Timeout - e.clk.Now().Sub(start)
		if left <= 0 {
			return received{}, ErrTimeout
		}
		wait := min(gap, left)
		gap *= 2
		tick := make(chan struct{})
		tm := e.clk.AfterFunc(wait, func() { close(tick) })
		select {
		case r := <-ch:
			tm.Stop()
			return r, nil
		case <-ctx.Done():
			tm.Stop()
			return received{}, ctx.Err()
		case <-tick:
		}
		if e.clk.Now().Sub(start) >= t.Timeout {
			select {
			case r := <-ch:
				return r, nil
			default:
			}
			return received{}, ErrTimeout
		}
	}
}
