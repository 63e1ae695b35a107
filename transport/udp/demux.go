package udp

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// demuxConn is the user-space demultiplexer's face towards quic-go: the
// port's read loop pushes QUIC-class packets into a bounded ring, and quic-go
// reads them through the net.PacketConn methods. Writes go straight out of
// the port's socket, so the NAT sees one mapping.
//
// quic-go treats it as a plain net.PacketConn (no GSO, no batched reads);
// that is the cost the kernel steering on Linux avoids.
type demuxConn struct {
	port *Port

	mu     sync.Mutex
	ring   []demuxSlot // grows on demand up to limit: an idle port costs nothing
	limit  int         // Config.QUICQueueLen
	head   int         // oldest queued slot
	count  int         // queued slots
	free   [][]byte    // buffers of slots already read, for reuse
	closed bool
	// addrs reuses *net.UDPAddr values for the sources quic-go reads from, so a
	// flow costs no allocation per packet; cleared when it reaches maxAddrCache.
	addrs map[netip.AddrPort]*net.UDPAddr

	ready chan struct{} // capacity 1: something was queued
	done  chan struct{} // closed by Close

	readDL, writeDL deadline
}

type demuxSlot struct {
	buf  []byte
	from netip.AddrPort
}

const maxAddrCache = 1024

func newDemuxConn(p *Port, queueLen int) *demuxConn {
	return &demuxConn{
		port:  p,
		limit: queueLen,
		addrs: make(map[netip.AddrPort]*net.UDPAddr),
		ready: make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
}

// push queues a copy of b for quic-go; it runs on the port's read goroutine.
func (c *demuxConn) push(b []byte, from netip.AddrPort) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.port.ctr.quicClosed.Add(1)
		return
	}
	if c.count == len(c.ring) && !c.grow() {
		c.mu.Unlock()
		c.port.ctr.quicQueueFull.Add(1)
		return
	}
	s := &c.ring[(c.head+c.count)%len(c.ring)]
	if n := len(c.free); n > 0 {
		s.buf, c.free = c.free[n-1], c.free[:n-1]
	}
	if cap(s.buf) < len(b) {
		// At least a full-size QUIC packet, so that a buffer is allocated
		// once and then reused.
		s.buf = make([]byte, 0, max(len(b), 1500))
	}
	s.buf = append(s.buf[:0], b...)
	s.from = from
	c.count++
	c.mu.Unlock()
	c.signal()
}

func (c *demuxConn) signal() {
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// grow enlarges the full ring, keeping the queued order; false when it is
// at its limit. c.mu is held.
func (c *demuxConn) grow() bool {
	if len(c.ring) >= c.limit {
		return false
	}
	ring := make([]demuxSlot, min(max(2*len(c.ring), 16), c.limit))
	for i := range c.count {
		ring[i] = c.ring[(c.head+i)%len(c.ring)]
	}
	c.ring, c.head = ring, 0
	return true
}

// ReadFrom returns the oldest queued QUIC packet, waiting for one until the
// read deadline or Close.
func (c *demuxConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return 0, nil, c.opError("read", net.ErrClosed)
		}
		if c.readDL.expired() {
			c.mu.Unlock()
			return 0, nil, c.opError("read", os.ErrDeadlineExceeded)
		}
		if c.count > 0 {
			s := &c.ring[c.head]
			n := copy(b, s.buf)
			addr := c.udpAddr(s.from)
			c.free = append(c.free, s.buf)
			s.buf = nil
			c.head = (c.head + 1) % len(c.ring)
			c.count--
			more := c.count > 0
			c.mu.Unlock()
			if more {
				// Another reader may be waiting for the signal this one consumed.
				c.signal()
			}
			return n, addr, nil
		}
		c.mu.Unlock()
		select {
		case <-c.ready:
		case <-c.done:
		case <-c.readDL.wait():
		}
	}
}

// udpAddr returns a shared *net.UDPAddr for ap; c.mu is held.
func (c *demuxConn) udpAddr(ap netip.AddrPort) *net.UDPAddr {
	if a, ok := c.addrs[ap]; ok {
		return a
	}
	if len(c.addrs) >= maxAddrCache {
		clear(c.addrs)
	}
	a := net.UDPAddrFromAddrPort(ap)
	c.addrs[ap] = a
	return a
}

// WriteTo sends b from the port's socket.
func (c *demuxConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-c.done:
		return 0, c.opError("write", net.ErrClosed)
	default:
	}
	if c.writeDL.expired() {
		return 0, c.opError("write", os.ErrDeadlineExceeded)
	}
	var to netip.AddrPort
	switch a := addr.(type) {
	case *net.UDPAddr:
		to = a.AddrPort()
	default:
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return 0, c.opError("write", &net.AddrError{Err: "not a UDP address", Addr: addr.String()})
		}
		to = ap
	}
	if err := c.port.WriteTo(b, to); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close stops quic-go's side only: queued packets are discarded, later
// QUIC-class packets are dropped and counted, and the port keeps running.
func (c *demuxConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.ring, c.free, c.count = nil, nil, 0
	close(c.done)
	return nil
}

func (c *demuxConn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.port.LocalAddr()) }

func (c *demuxConn) SetDeadline(t time.Time) error {
	c.readDL.set(t)
	c.writeDL.set(t)
	return nil
}

func (c *demuxConn) SetReadDeadline(t time.Time) error {
	c.readDL.set(t)
	return nil
}

func (c *demuxConn) SetWriteDeadline(t time.Time) error {
	c.writeDL.set(t)
	return nil
}

// SetReadBuffer and SetWriteBuffer size the port's socket when it has one.
// quic-go calls them on every conn it is given and warns when they are
// missing; over a conn without buffers (internal/netsim) they do nothing.
func (c *demuxConn) SetReadBuffer(n int) error {
	if s, ok := c.port.pc.(interface{ SetReadBuffer(int) error }); ok {
		return s.SetReadBuffer(n)
	}
	return nil
}

func (c *demuxConn) SetWriteBuffer(n int) error {
	if s, ok := c.port.pc.(interface{ SetWriteBuffer(int) error }); ok {
		return s.SetWriteBuffer(n)
	}
	return nil
}

func (c *demuxConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "udp", Addr: c.LocalAddr(), Err: err}
}

// deadline is a settable point in time and a channel that is closed when it
// passes. A reader waits on wait(); moving the deadline keeps an open channel
// (so blocked readers follow the change) and replaces a closed one.
type deadline struct {
	mu    sync.Mutex
	at    time.Time
	timer *time.Timer
	gen   uint64        // invalidates timers that fire after being replaced
	c     chan struct{} // nil until first needed
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.at = t
	if d.c == nil || isClosed(d.c) {
		d.c = make(chan struct{})
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.c)
		return
	}
	gen, c := d.gen, d.c
	d.timer = time.AfterFunc(dur, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen {
			close(c)
		}
	})
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c == nil {
		d.c = make(chan struct{})
	}
	return d.c
}

func (d *deadline) expired() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.at.IsZero() && !time.Now().Before(d.at)
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
