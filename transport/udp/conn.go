package udp

import (
	"context"
	"net/netip"
	"sync"

	ma "github.com/multiformats/go-multiaddr"

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
	if c != nil && isDone(c.Done()) {
		delete(ct.m, s)
		return nil
	}
	return c
}

func (ct *connTable) add(s security.Session, c transport.Conn) {
	ct.m[s] = c
	if len(ct.m) >= 2*ct.sweepSize {
		for s, c := range ct.m {
			if isDone(c.Done()) {
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
