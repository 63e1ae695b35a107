// Package reliable is go-ipv8's user-space reliable transport: it runs
// reliable, ordered, flow-controlled streams and unreliable datagrams over
// a secure datagram session (security.Session), in the manner of TCP and
// QUIC. A stream opens with a SYN-like STREAM_OPEN frame that names its
// protocol and carries the first data; selective ACK ranges, loss detection
// by packet-number and time thresholds with a probe timeout (RFC 9002),
// CUBIC or BBR congestion control with pacing, and flow-control windows
// that grow with the measured bandwidth-delay product move the data. Each
// Conn reports what it measured of its path (RTT, bandwidth, loss) and
// tells subscribers when the path changes.
//
// One Muxer serves every connection of a port from a single event loop:
// a connection is a struct with one entry in a timer heap, not a goroutine.
// The wire format is specified in docs/protocol/mux.md; the files follow a
// packet's steps: frame_*.go (wire), receive.go, ackhandler.go, loss.go,
// send.go, cc_*.go, pacer.go, flowcontrol.go, stream.go, timers.go, loop.go.
package reliable

import (
	"container/heap"
	"errors"
	"sync"
	"time"

	"github.com/ipv8/go-ipv8/mux"
	"github.com/ipv8/go-ipv8/security"
	"github.com/ipv8/go-ipv8/transport"
)

// batchSize is how many packets the loop builds for one connection before
// handing them to the session at once: one SendBatch, which the port sends
// with one sendmmsg call, and with UDP GSO as one or two runs (a run holds
// up to 64 KiB, 45 full-size packets). 64 moves about 5 % more than 32 on
// loopback.
const batchSize = 64

// Muxer runs connections over sessions; one per port. It owns the event
// loop goroutine that sends every connection's packets and fires their
// timers. Received packets are handled on the session's (the port's)
// goroutine directly.
type Muxer struct {
	cfg   Config
	epoch time.Time

	mu     sync.Mutex
	ready  []*conn
	timers connHeap
	conns  connList
	closed bool
	wake   chan struct{}
	stop   chan struct{}
	exited chan struct{}
}

var _ mux.Muxer = (*Muxer)(nil)

// New starts a Muxer and its event loop.
func New(cfg Config) *Muxer {
	m := &Muxer{
		cfg:    cfg.withDefaults(),
		epoch:  time.Now(),
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go m.run()
	return m
}

// ErrMuxerClosed is returned by NewConn after Close.
var ErrMuxerClosed = errors.New("reliable: muxer closed")

// NewConn runs a connection over sess. The packets that arrived before
// (0-RTT data) are delivered by the session once the receiver is set.
func (m *Muxer) NewConn(sess security.Session, initiator bool) (transport.Conn, error) {
	if sess.MaxPayload() < minPacketSize {
		return nil, errors.New("reliable: session payload too small for the mux")
	}
	c := newConn(m, sess, initiator)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrMuxerClosed
	}
	m.conns.add(c)
	m.mu.Unlock()
	c.mu.Lock()
	c.updateTimerLocked(m.now())
	pending := c.hasPending()
	c.mu.Unlock()
	sess.SetReceiver(c.receive)
	if pending {
		m.schedule(c)
	}
	return c, nil
}

// Close closes every connection (telling each remote) and stops the loop.
func (m *Muxer) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		<-m.exited
		return nil
	}
	m.closed = true
	conns := m.conns.all()
	m.mu.Unlock()
	for _, c := range conns {
		c.CloseWithError(transport.CodeConnClosing, "muxer closed")
	}
	close(m.stop)
	<-m.exited
	// Finish what the loop did not (a conn closed concurrently by its user).
	m.mu.Lock()
	rest := m.conns.all()
	for _, c := range rest {
		m.conns.remove(c)
	}
	m.mu.Unlock()
	for _, c := range rest {
		c.mu.Lock()
		c.closeLocked(ErrMuxerClosedConn, nil)
		c.finishLocked()
		c.mu.Unlock()
		c.sess.Close()
		c.deliver() // onClose
	}
	return nil
}

// ErrMuxerClosedConn is what operations of a Conn return after its Muxer closed.
var ErrMuxerClosedConn = &transport.ConnError{Code: transport.CodeConnClosing, Reason: "muxer closed"}

func (m *Muxer) now() time.Duration { return time.Since(m.epoch) }

// schedule asks the loop to run c soon (it has something to send).
func (m *Muxer) schedule(c *conn) {
	m.mu.Lock()
	if !c.inReady {
		c.inReady = true
		m.ready = append(m.ready, c)
	}
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// setTimer moves c's heap entry to at (noDeadline removes it).
func (m *Muxer) setTimer(c *conn, at time.Duration) {
	m.mu.Lock()
	if at == noDeadline {
		if c.heapIdx > 0 {
			heap.Remove(&m.timers, int(c.heapIdx-1))
		}
	} else if c.heapIdx > 0 {
		c.timerAt = at
		heap.Fix(&m.timers, int(c.heapIdx-1))
	} else {
		c.timerAt = at
		heap.Push(&m.timers, c)
	}
	// The loop sleeps until the first deadline: wake it when that moved.
	wakeLoop := len(m.timers) > 0 && m.timers[0] == c
	m.mu.Unlock()
	if wakeLoop {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// run is the event loop: it fires due timers and lets ready connections
// send, round-robin, a batch at a time.
func (m *Muxer) run() {
	defer close(m.exited)
	timer := time.NewTimer(time.Hour)
	var work []*conn
	// One set of packet buffers serves every connection, back to back in
	// one slab, each as large as the largest packet a connection served so
	// far may take (service grows them): 64 × 1.4 KB for sessions over
	// the Internet's MTU, not 64 × the 65 000-byte cap. They start at that
	// common size, which the first connection would grow them to anyway,
	// so that its first packet does not wait for ≈ 90 KB to be allocated
	// and zeroed (≈ 5 µs of a first connect and echo on loopback).
	bufs := make([][]byte, batchSize)
	growBufs(bufs, min(firstPacketBuf, m.cfg.MaxPacketSize))
	for {
		now := m.now()
		m.mu.Lock()
		work = work[:0]
		for len(m.timers) > 0 && m.timers[0].timerAt <= now {
			c := heap.Pop(&m.timers).(*conn)
			if !c.inReady {
				c.inReady = true
				m.ready = append(m.ready, c)
			}
		}
		work = append(work, m.ready...)
		for _, c := range m.ready {
			c.inReady = false
		}
		clear(m.ready)
		m.ready = m.ready[:0]
		wait := time.Hour
		if len(m.timers) > 0 {
			wait = m.timers[0].timerAt - now
		}
		m.mu.Unlock()
		if len(work) == 0 {
			timer.Reset(wait)
			select {
			case <-m.wake:
			case <-timer.C:
			case <-m.stop:
				return
			}
			timer.Stop()
			continue
		}
		for _, c := range work {
			m.service(c, bufs)
		}
	}
}

// service runs c's timers, builds what it may send and sends it.
func (m *Muxer) service(c *conn, bufs [][]byte) {
	now := m.now()
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		return
	}
	c.timerSet = -1 // the heap entry may have been popped: always re-arm
	if !c.closed {
		c.onTimers(now)
		// The session's payload limit changes when its path does (a relay
		// adds a header): lost data is repacked, so packets just follow.
		if mp := min(c.sess.MaxPayload(), m.cfg.MaxPacketSize); mp != c.maxPacket && mp >= minPacketSize {
			c.maxPacket = mp
		}
	}
	if cap(bufs[0]) < c.maxPacket {
		growBufs(bufs, c.maxPacket)
	}
	n, more := c.buildPackets(now, bufs)
	finish := c.closed && c.closeSend == nil
	c.updateTimerLocked(now)
	c.mu.Unlock()
	if n > 0 {
		m.sendPackets(c, bufs[:n])
	}
	if finish {
		c.mu.Lock()
		c.finishLocked()
		c.mu.Unlock()
		c.sess.Close()
		m.mu.Lock()
		m.conns.remove(c)
		if c.heapIdx > 0 {
			heap.Remove(&m.timers, int(c.heapIdx-1))
		}
		m.mu.Unlock()
		c.deliver() // onClose
		return
	}
	if more {
		m.schedule(c)
	}
}

// growBufs gives every packet buffer room for size bytes, in one slab.
func growBufs(bufs [][]byte, size int) {
	slab := make([]byte, len(bufs)*size)
	for i := range bufs {
		bufs[i] = slab[i*size : i*size : (i+1)*size]
	}
}

// sendPackets hands the packets to the session, at once when it can batch.
func (m *Muxer) sendPackets(c *conn, pkts [][]byte) {
	var err error
	if bs, ok := c.sess.(mux.BatchSender); ok && len(pkts) > 1 {
		_, err = bs.SendBatch(pkts)
	} else {
		for _, p := range pkts {
			if err = c.sess.Send(p); err != nil {
				break
			}
		}
	}
	if err != nil && errors.Is(err, security.ErrSessionClosed) {
		c.mu.Lock()
		c.closeLocked(c.sessionEndedErr(), nil)
		c.mu.Unlock()
	}
	// Other errors (a full socket buffer) are losses like any other:
	// recovery resends.
}

// connHeap orders connections by their next deadline; heapIdx is the
// position + 1 (0: not in the heap).
type connHeap []*conn

func (h connHeap) Len() int           { return len(h) }
func (h connHeap) Less(i, j int) bool { return h[i].timerAt < h[j].timerAt }
func (h connHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = int32(i+1), int32(j+1)
}
func (h *connHeap) Push(x any) {
	c := x.(*conn)
	c.heapIdx = int32(len(*h) + 1)
	*h = append(*h, c)
}
func (h *connHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	c.heapIdx = 0
	return c
}

// connList is the Muxer's connections, linked through the conns themselves
// (a map would cost each Conn a table slot); guarded by Muxer.mu.
type connList struct {
	head *conn
	n    int
}

func (l *connList) add(c *conn) {
	c.listPrev, c.listNext, c.inList = nil, l.head, true
	if l.head != nil {
		l.head.listPrev = c
	}
	l.head = c
	l.n++
}

func (l *connList) remove(c *conn) {
	if !c.inList {
		return
	}
	if c.listPrev != nil {
		c.listPrev.listNext = c.listNext
	} else {
		l.head = c.listNext
	}
	if c.listNext != nil {
		c.listNext.listPrev = c.listPrev
	}
	c.listPrev, c.listNext, c.inList = nil, nil, false
	l.n--
}

func (l *connList) all() []*conn {
	out := make([]*conn, 0, l.n)
	for c := l.head; c != nil; c = c.listNext {
		out = append(out, c)
	}
	return out
}
