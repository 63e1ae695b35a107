package udp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipv8/go-ipv8/mux"
	"github.com/ipv8/go-ipv8/security"
	"github.com/ipv8/go-ipv8/transport"
)

// connTable maps sessions to their Conns. Entries of ended Conns are swept
// when the table has doubled since the last sweep, so the cost stays
// constant per Conn without a goroutine per Conn watching Done.
type connTable struct {
	m         map[security.Session]transport.Conn
	sweepSize int
}

func newConnTable() *connTable {
	return &connTable{m: make(map[security.Session]transport.Conn), sweepSize: 64}
}

func (ct *connTable) get(s security.Session) transport.Conn {
	c := ct.m[s]
	if c != nil && transport.Ended(c) {
		delete(ct.m, s)
		return nil
	}
	return c
}

func (ct *connTable) add(s security.Session, c transport.Conn) {
	ct.m[s] = c
	if len(ct.m) >= 2*ct.sweepSize {
		for s, c := range ct.m {
			if transport.Ended(c) { // Done would make an idle Conn keep a channel
				delete(ct.m, s)
			}
		}
		ct.sweepSize = max(64, len(ct.m))
	}
}

func (ct *connTable) all() []transport.Conn {
	out := make([]transport.Conn, 0, len(ct.m))
	for _, c := range ct.m {
		out = append(out, c)
	}
	return out
}

func (ct *connTable) len() int { return len(ct.m) }

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// listener queues inbound Conns for Accept.
type listener struct {
	t    *Transport
	q    chan transport.Conn
	done chan struct{}
	once sync.Once
}

func newListener(t *Transport, backlog int) *listener {
	return &listener{t: t, q: make(chan transport.Conn, backlog), done: make(chan struct{})}
}

// offer queues c unless the listener is closed or its backlog is full.
func (l *listener) offer(c transport.Conn) bool {
	select {
	case <-l.done:
		return false
	default:
	}
	select {
	case l.q <- c:
		return true
	default:
		return false
	}
}

// Accept waits for the next inbound Conn; its remote is authenticated.
func (l *listener) Accept(ctx context.Context) (transport.Conn, error) {
	select {
	case c := <-l.q:
		return c, nil
	case <-l.done:
		return nil, transport.ErrTransportClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Multiaddr is the port's address with /ipv8.
func (l *listener) Multiaddr() ma.Multiaddr { return l.t.laddr }

// Close stops accepting; Conns still queued are closed.
func (l *listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.t.removeListener(l)
		for {
			select {
			case c := <-l.q:
				c.CloseWithError(transport.CodeConnClosing, "listener closed")
			default:
				return
			}
		}
	})
	return nil
}

// sessionBatchWriter adapts the port's WriteBatch to the security layer's batch
// writer (packets to one address), reusing its Message slices.
type sessionBatchWriter struct {
	p    *Port
	pool sync.Pool // *[]Message
}

func newSessionBatchWriter(p *Port) *sessionBatchWriter {
	return &sessionBatchWriter{p: p}
}

func (w *sessionBatchWriter) write(pkts [][]byte, to netip.AddrPort) (int, error) {
	mp, _ := w.pool.Get().(*[]Message)
	if mp == nil {
		mp = new([]Message)
	}
	msgs := (*mp)[:0]
	for _, b := range pkts {
		msgs = append(msgs, Message{Buf: b, Addr: to})
	}
	n, err := w.p.WriteBatch(msgs)
	clear(msgs)
	*mp = msgs[:0]
	w.pool.Put(mp)
	return n, err
}

// earlySession is what the mux runs a Conn from DialEarly over: the
// session, with Send and SendBatch trying 0-RTT first while the handshake
// runs.
type earlySession struct {
	security.EarlySession
	up atomic.Bool // the handshake ended: Send goes straight to the session
}

var (
	_ mux.BatchSender = (*earlySession)(nil)
	_ mux.PathKinder  = (*earlySession)(nil)
)

func (e *earlySession) Send(b []byte) error {
	if !e.up.Load() {
		if sent, err := e.SendEarly(b); sent || err != nil {
			return err
		}
	}
	return e.EarlySession.Send(b)
}

func (e *earlySession) SendBatch(pkts [][]byte) (int, error) {
	i := 0
	if !e.up.Load() {
		for ; i < len(pkts); i++ {
			sent, err := e.SendEarly(pkts[i])
			if err != nil {
				return i, err
			}
			if !sent {
				break
			}
		}
	}
	if i == len(pkts) {
		return i, nil
	}
	if bs, ok := e.EarlySession.(mux.BatchSender); ok {
		n, err := bs.SendBatch(pkts[i:])
		return i + n, err
	}
	for ; i < len(pkts); i++ {
		if err := e.EarlySession.Send(pkts[i]); err != nil {
			return i, err
		}
	}
	return i, nil
}

// Err tells why the session ended, in transport terms: a handshake that met
// another peer than the one dialled wraps transport.ErrWrongPeer.
func (e *earlySession) Err() error {
	se, ok := e.EarlySession.(security.SessionErr)
	if !ok {
		return nil
	}
	err := se.Err()
	if err == nil {
		return nil
	}
	return handshakeCause(err)
}

// handshakeCause words a failed handshake's error for the Conn.
func handshakeCause(err error) error {
	if errors.Is(err, security.ErrWrongPeer) {
		return fmt.Errorf("%w: %w", transport.ErrWrongPeer, err)
	}
	return fmt.Errorf("handshake failed: %w", err)
}

func (e *earlySession) PathKind() transport.PathKind {
	if pk, ok := e.EarlySession.(mux.PathKinder); ok {
		return pk.PathKind()
	}
	return transport.PathDirect
}

// earlyDial follows one DialEarly to the end of its handshake, which may
// come before or after the Conn is made.
type earlyDial struct {
	t  *Transport
	ws *earlySession

	mu       sync.Mutex
	conn     transport.Conn
	ended    bool
	finished bool
	other    security.Session
	err      error
}

// established is the security transport's callback (it must not block).
func (d *earlyDial) established(other security.Session, err error) {
	d.mu.Lock()
	d.ended, d.other, d.err = true, other, err
	d.mu.Unlock()
	d.finish()
}

func (d *earlyDial) setConn(c transport.Conn) {
	d.mu.Lock()
	d.conn = c
	d.mu.Unlock()
	d.finish()
}

// finish acts once both the Conn and the handshake's end are known: a
// failed handshake closes the Conn with its reason; a session that won a
// simultaneous open becomes a Conn like an inbound one (the peer dialled).
func (d *earlyDial) finish() {
	d.mu.Lock()
	if d.finished || !d.ended || d.conn == nil {
		d.mu.Unlock()
		return
	}
	d.finished = true
	c, other, err := d.conn, d.other, d.err
	d.mu.Unlock()
	if d.ws != nil {
		d.ws.up.Store(true)
	}
	if err == nil {
		return
	}
	d.t.log.Debug("early dial failed", "peer", c.RemotePeer(), "err", err)
	// CloseWithError waits for the mux's loop: not on the caller's goroutine.
	go func() {
		cause := handshakeCause(err)
		if a, ok := c.(interface {
			Abort(transport.ErrorCode, error) error
		}); ok {
			a.Abort(transport.CodeConnClosing, cause)
		} else {
			c.CloseWithError(transport.CodeConnClosing, cause.Error())
		}
		if other != nil {
			d.t.inbound(other)
		}
	}()
}
