package netsim

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipv8/go-ipv8/transport"
)

// DefaultReadBuffer is a Conn's receive buffer (payload bytes) until
// SetReadBuffer changes it; like a kernel socket's, a full buffer drops.
const DefaultReadBuffer = 256 << 10

var errClosed = net.ErrClosed

// Conn is a UDP socket on a Host. It implements transport.PacketConn and
// can be the socket of a quic-go Transport.
type Conn struct {
	host   *Host
	port   uint16
	closed atomic.Bool

	mu      sync.Mutex
	handler func(pkt []byte, from netip.AddrPort)
	q       ring
	rcvbuf  int
	wake    chan struct{} // a packet arrived; made on the first blocking read
	done    chan struct{} // closed by Close; made on the first blocking read
	rdl     *deadline
	wdl     time.Time
	isShut  bool
}

var (
	_ transport.PacketConn = (*Conn)(nil)
	_ net.PacketConn       = (*Conn)(nil)
)

func newConn(h *Host, port uint16) *Conn {
	return &Conn{host: h, port: port, rcvbuf: DefaultReadBuffer}
}

// Host is the host the Conn belongs to.
func (c *Conn) Host() *Host { return c.host }

// LocalAddrPort is the Conn's address now (the host's current address).
func (c *Conn) LocalAddrPort() netip.AddrPort {
	return netip.AddrPortFrom(c.host.Addr(), c.port)
}

// LocalAddr returns the Conn's address as a *net.UDPAddr.
func (c *Conn) LocalAddr() net.Addr {
	return net.UDPAddrFromAddrPort(c.LocalAddrPort())
}

// SetHandler makes the network deliver packets by calling f instead of
// queueing them for reads (nil goes back to queueing). f owns pkt. f runs
// on the scheduler goroutine (real time) or the RunFor caller (virtual
// time), one call at a time across the network, and must not block.
// Packets already queued stay for reads.
func (c *Conn) SetHandler(f func(pkt []byte, from netip.AddrPort)) {
	c.mu.Lock()
	c.handler = f
	c.mu.Unlock()
}

// SetReadBuffer sets the receive buffer in payload bytes.
func (c *Conn) SetReadBuffer(bytes int) error {
	if bytes <= 0 {
		return errors.New("netsim: SetReadBuffer: size must be positive")
	}
	c.mu.Lock()
	c.rcvbuf = bytes
	c.mu.Unlock()
	return nil
}

// SetWriteBuffer is accepted and ignored: the sender's link queue
// (Link.QueueBytes) is the only send buffer.
func (c *Conn) SetWriteBuffer(bytes int) error { return nil }

// deliver hands a packet that reached the Conn to its handler or queue.
// It runs outside the network lock.
func (c *Conn) deliver(data []byte, from netip.AddrPort) {
	st := &c.host.n.stats
	c.mu.Lock()
	if c.isShut {
		c.mu.Unlock()
		st.drops[DropNoListener].Add(1)
		return
	}
	if h := c.handler; h != nil {
		c.mu.Unlock()
		st.delivered.Add(1)
		h(data, from)
		return
	}
	if c.q.bytes+len(data) > c.rcvbuf {
		c.mu.Unlock()
		st.drops[DropRecvBuffer].Add(1)
		return
	}
	c.q.push(qpkt{data: data, from: from})
	if c.wake != nil {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	c.mu.Unlock()
	st.delivered.Add(1)
}

// ReadFromUDPAddrPort reads one packet into b (a longer packet is
// truncated, as with UDP). It blocks until a packet arrives, the read
// deadline passes (an error with Timeout() true, matching
// os.ErrDeadlineExceeded) or the Conn is closed (net.ErrClosed). On a
// virtual-time network it never blocks: with no packet queued it returns
// ErrWouldBlock.
func (c *Conn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		c.mu.Lock()
		if p, ok := c.q.pop(); ok {
			if c.q.len() > 0 && c.wake != nil {
				// Pass the wake-up on to another blocked reader.
				select {
				case c.wake <- struct{}{}:
				default:
				}
			}
			c.mu.Unlock()
			return copy(b, p.data), p.from, nil
		}
		if c.isShut {
			c.mu.Unlock()
			return 0, netip.AddrPort{}, c.opError("read", errClosed)
		}
		if c.host.n.virtual {
			c.mu.Unlock()
			return 0, netip.AddrPort{}, c.opError("read", ErrWouldBlock)
		}
		if c.rdl == nil {
			c.rdl = newDeadline()
		}
		expired := c.rdl.wait()
		select {
		case <-expired:
			c.mu.Unlock()
			return 0, netip.AddrPort{}, c.opError("read", os.ErrDeadlineExceeded)
		default:
		}
		if c.wake == nil {
			c.wake = make(chan struct{}, 1)
			c.done = make(chan struct{})
		}
		wake, done := c.wake, c.done
		c.mu.Unlock()
		select {
		case <-wake:
		case <-done:
		case <-expired:
		}
	}
}

// ReadFrom is ReadFromUDPAddrPort with a *net.UDPAddr.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return 0, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// WriteToUDPAddrPort sends b to addr. It never blocks: a packet the
// network drops (full queue, loss, MTU, no route …) still counts as
// written, as with a real NIC; see Network.Stats.
func (c *Conn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if !addr.IsValid() || addr.Port() == 0 {
		return 0, c.opError("write", errors.New("netsim: invalid destination address"))
	}
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	c.mu.Lock()
	wdl := c.wdl
	c.mu.Unlock()
	if !wdl.IsZero() && !time.Now().Before(wdl) {
		return 0, c.opError("write", os.ErrDeadlineExceeded)
	}
	if err := c.host.n.send(c, b, addr); err != nil {
		return 0, c.opError("write", err)
	}
	return len(b), nil
}

// WriteTo sends b to addr, which must be a *net.UDPAddr.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || ua == nil {
		return 0, c.opError("write", errors.New("netsim: WriteTo needs a *net.UDPAddr"))
	}
	return c.WriteToUDPAddrPort(b, ua.AddrPort())
}

// Close closes the Conn: its port is free again, blocked reads return
// net.ErrClosed, packets still queued are discarded.
func (c *Conn) Close() error {
	n := c.host.n
	n.mu.Lock()
	if c.closed.Load() {
		n.mu.Unlock()
		return c.opError("close", errClosed)
	}
	if c.host.conns[c.port] == c {
		delete(c.host.conns, c.port)
	}
	n.mu.Unlock()
	c.shut()
	return nil
}

// shut marks the Conn closed and wakes its readers.
func (c *Conn) shut() {
	c.closed.Store(true)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isShut {
		return
	}
	c.isShut = true
	c.q = ring{}
	if c.done != nil {
		close(c.done)
	}
	if c.rdl != nil {
		c.rdl.set(time.Time{})
	}
}

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets when blocked and future reads time out; it also
// wakes reads blocked now. The zero time means no deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isShut {
		return c.opError("set deadline", errClosed)
	}
	if c.rdl == nil {
		if t.IsZero() {
			return nil
		}
		c.rdl = newDeadline()
	}
	c.rdl.set(t)
	return nil
}

// SetWriteDeadline sets when writes start failing with a timeout. Writes
// never block, so it only matters once it has passed.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isShut {
		return c.opError("set deadline", errClosed)
	}
	c.wdl = t
	return nil
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "udp", Addr: c.LocalAddr(), Err: err}
}

// qpkt is a queued packet.
type qpkt struct {
	data []byte
	from netip.AddrPort
}

// ring is a growable FIFO of packets, counted in payload bytes.
type ring struct {
	buf     []qpkt
	head, n int
	bytes   int
}

func (r *ring) len() int { return r.n }

func (r *ring) push(p qpkt) {
	if r.n == len(r.buf) {
		nb := make([]qpkt, max(2*len(r.buf), 8))
		for i := range r.n {
			nb[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = p
	r.n++
	r.bytes += len(p.data)
}

func (r *ring) pop() (qpkt, bool) {
	if r.n == 0 {
		return qpkt{}, false
	}
	p := r.buf[r.head]
	r.buf[r.head] = qpkt{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	r.bytes -= len(p.data)
	return p, true
}

// deadline is a read deadline that blocked readers can select on: its
// channel is closed when the deadline passes and replaced when it is moved.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{}
}

func newDeadline() *deadline { return &deadline{ch: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		// The timer fired (or is firing) and closes the current channel.
		<-d.ch
	}
	d.timer = nil
	select {
	case <-d.ch:
		d.ch = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.ch)
		return
	}
	ch := d.ch
	d.timer = time.AfterFunc(dur, func() { close(ch) })
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}
