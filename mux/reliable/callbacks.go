package reliable

import (
	"errors"

	"github.com/ipv8/go-ipv8/transport"
)

// ErrCallbacksInstalled is returned by AcceptStream and ReceiveDatagram
// once SetCallbacks has been called: streams and datagrams then go to the
// callbacks, and a call waiting for them would wait for ever.
var ErrCallbacksInstalled = errors.New("reliable: callbacks are installed (SetCallbacks): streams and datagrams go to them, not to AcceptStream or ReceiveDatagram")

var _ transport.CallbackConn = (*conn)(nil)

// callbacks is a Conn's push delivery: three words and three flags in the
// conn, no goroutine. Streams and datagrams still land in the accept
// queue and the datagram queue under the conn's lock; whichever goroutine
// queued one (the session's receive goroutine), installed the callbacks,
// or ended the Conn (the event loop) then drains the queues into the callbacks with the lock
// released, so a callback may call back into the Conn or its streams.
type callbacks struct {
	onStream   func(transport.Stream)
	onDatagram func([]byte)
	onClose    func()
	set        bool // SetCallbacks was called
	delivering bool // a goroutine is draining the queues: others leave it to it
	closed     bool // onClose was called
}

// SetCallbacks hands every stream the remote opens to onStream and every
// datagram received to onDatagram (which may keep the slice), and calls
// onClose once when the Conn has ended. Streams and datagrams queued before
// the call are delivered before it returns, and a Conn that has already
// ended gets onClose before it returns.
//
// The callbacks run on whichever goroutine delivers (the session's receive
// goroutine, the Muxer's loop, or the caller of SetCallbacks), one at a
// time: streams and datagrams each in the order they arrived, and onClose
// after every other callback, which none follows. Streams still queued
// when the Conn closes are dropped (every call on them would fail with the
// close's error). The callbacks must not block: a slow one stalls the
// receive path of every Conn on the port. A nil onStream resets each stream
// with CodeProtocolNotSupported; a nil onDatagram drops datagrams.
//
// Afterwards AcceptStream and ReceiveDatagram fail with
// ErrCallbacksInstalled (callers already waiting wake up with it).
// SetCallbacks may be called once; a second call panics.
func (c *conn) SetCallbacks(onStream func(transport.Stream), onDatagram func(b []byte), onClose func()) {
	c.mu.Lock()
	if c.cb.set {
		c.mu.Unlock()
		panic("reliable: SetCallbacks called twice on one Conn")
	}
	c.cb.onStream, c.cb.onDatagram, c.cb.onClose = onStream, onDatagram, onClose
	c.cb.set = true
	// Wake AcceptStream and ReceiveDatagram callers: they return
	// ErrCallbacksInstalled.
	signal(c.acceptWake)
	if c.dg != nil {
		signal(c.dg.wake)
	}
	c.mu.Unlock()
	c.deliver()
}

// needDeliverLocked reports whether deliver has work that no other
// goroutine is doing.
func (c *conn) needDeliverLocked() bool {
	return c.cb.set && !c.cb.delivering &&
		(c.q.acceptLen() > 0 || c.dg.inLen() > 0 || (c.finished && !c.cb.closed))
}

// deliver drains the queued streams and datagrams into the callbacks and,
// once the Conn has ended, calls onClose. One goroutine delivers at a time
// (the delivering flag); one that finds another at work leaves what it
// queued to it, which looks at the queues again before it stops, so
// nothing is left behind and the order holds.
func (c *conn) deliver() {
	c.mu.Lock()
	if !c.needDeliverLocked() {
		c.mu.Unlock()
		return
	}
	c.cb.delivering = true
	for {
		switch {
		case c.q.acceptLen() > 0 && c.closed:
			// Every call on these streams fails with the close's error:
			// starting handlers for them would be wasted.
			c.q.accept = deque[*stream]{}
		case c.q.acceptLen() > 0:
			s := c.q.accept.popFront()
			f := c.cb.onStream
			c.mu.Unlock()
			if f != nil {
				f(s)
			} else {
				s.Reset(transport.CodeProtocolNotSupported)
			}
			c.mu.Lock()
		case c.dg.inLen() > 0:
			d := c.dg.in.popFront()
			f := c.cb.onDatagram
			c.mu.Unlock()
			if f != nil {
				f(d)
			}
			c.mu.Lock()
		case c.finished && !c.cb.closed:
			// finished is set once, after which nothing is queued: this
			// is the last callback.
			c.cb.closed = true
			f := c.cb.onClose
			c.mu.Unlock()
			if f != nil {
				f()
			}
			c.mu.Lock()
		default:
			c.cb.delivering = false
			// Streams arrive seldom on most Conns: give the ring back, so
			// that an idle Conn holds none.
			if c.q != nil {
				c.q.accept = deque[*stream]{}
			}
			c.releaseQueues()
			c.dg.release()
			c.mu.Unlock()
			return
		}
	}
}
