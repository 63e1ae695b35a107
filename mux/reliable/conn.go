package reliable

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocol"
	"github.com/ipv8/go-ipv8/security"
	"github.com/ipv8/go-ipv8/transport"
)

// ErrIdleTimeout is the reason of a Conn closed because the remote fell silent.
var ErrIdleTimeout = errors.New("reliable: idle timeout")

// conn is one connection: a plain struct driven by the Muxer's event loop
// (timers, sending) and by the session's receive callback (packets). All
// its state is guarded by mu; the loop sends packets without holding it.
type conn struct {
	m      *Muxer
	sess   security.Session
	opened time.Duration // since the Muxer's epoch

	mu sync.Mutex

	// Flags, together so that they pack: the struct's size is most of what
	// an idle Conn costs. inReady belongs to the Muxer (its mutex).
	initiator       bool
	closed          bool
	finished        bool // the session was closed and done signalled
	inReady         bool
	hasLargestAcked bool
	pacingBlocked   bool
	needAckFreq     bool
	needMaxStreams  bool
	needMaxData     bool
	needPing        bool
	inList          bool        // on the Muxer's list (Muxer.mu)
	ended           atomic.Bool // finished, readable without the lock (Finished)

	// Lifecycle.
	closeErr  error         // what operations return after the close
	closeSend *closeFrame   // a CLOSE frame still to send
	done      chan struct{} // made by the first Done (most Conns are never waited on)

	// Packet sizes.
	maxPacket int

	// Event loop bookkeeping: heapIdx, timerAt and the list links belong to
	// the Muxer (its mutex); timerSet is the deadline last handed to it.
	listPrev, listNext *conn
	heapIdx            int32
	reorderThresh      uint32 // packet reordering threshold (≤ maxPacketThreshold); packs beside heapIdx
	timerAt            time.Duration
	timerSet           time.Duration

	// Receive side of packet numbers: what to acknowledge.
	ack ackState

	// Send side: packet numbers, history, loss recovery.
	nextPN          uint64
	sent            deque[sentPacket]
	sentBase        uint64 // packet number of sent.at(0)
	frames          deque[frameRecord]
	framesBase      uint64 // index of frames.at(0)
	largestAcked    uint64
	bytesInFlight   int
	elicitingInFlt  int
	lossTime        time.Duration
	ptoCount        int32
	probes          int32 // packets to send regardless of the window (PTO)
	lastElicitSent  time.Duration
	recentLost      deque[lostRecord]
	rtt             rttStats
	cc              congestionController
	pacer           pacer
	peerMaxAckDelay time.Duration

	// Delivery-rate estimation.
	delivered       uint64
	deliveredAt     time.Duration
	firstSentAt     time.Duration
	appLimitedUntil uint64
	roundEnd        uint64
	round           int64
	bwFilter        windowedFilter

	// What we asked the peer about acknowledgements.
	ackFreqSeq       uint32 // ACK_FREQUENCY frames sent (32 bits: never near 2^32)
	ackFreqThreshold uint32
	ackFreqDelay     time.Duration
	ackFreqAt        time.Duration

	// Streams.
	streams        map[uint64]*stream
	nextLocal      uint64 // index of the next stream we open
	peerMaxStreams uint64 // how many streams the peer lets us open
	remoteSeen     rangeSet
	remoteDone     uint64        // remote streams finished (for MAX_STREAMS)
	maxRemote      uint64        // how many streams we let the peer open (advertised)
	q              *streamQueues // nil while every queue is empty (an idle Conn)
	acceptWake     chan struct{}
	openWake       chan struct{}

	// Connection-level flow control.
	peerMaxData   uint64 // what the peer lets us send (sum of stream offsets)
	sentData      uint64
	recvWin       recvWindow
	recvHighest   uint64 // sum of the highest offsets received on all streams
	lastSent      time.Duration
	lastRecv      time.Duration
	lastKeepAlive time.Duration

	// Datagrams: nil until the Conn sends or receives one (most never do).
	dg *dgramState

	// Push delivery to the owner's callbacks (SetCallbacks).
	cb callbacks

	// Path.
	remoteAddr netip.AddrPort
	stats      connStats
	path       *pathWatch // nil until the first SubscribePathChanges
}

func newConn(m *Muxer, sess security.Session, initiator bool) *conn {
	now := m.now()
	c := &conn{
		m:               m,
		sess:            sess,
		initiator:       initiator,
		opened:          now,
		peerMaxStreams:  initialMaxStreams,
		maxRemote:       uint64(m.cfg.MaxIncomingStreams),
		peerMaxData:     initialConnWindow,
		recvWin:         newRecvWindow(initialConnWindow, m.cfg.MaxConnWindow),
		peerMaxAckDelay: defaultMaxAckDelay,
		reorderThresh:   packetThreshold,
		timerSet:        -1,
		remoteAddr:      sess.RemoteAddr(),
		lastRecv:        now,
		lastSent:        now,
		lastKeepAlive:   now,
		bwFilter:        windowedFilter{},
	}
	c.ack.init()
	c.maxPacket = min(sess.MaxPayload(), m.cfg.MaxPacketSize)
	c.cc = newController(m.cfg.Congestion, c.maxPacket, &c.rtt)
	c.pacer.setRate(c.cc.pacingRate(0), c.maxPacket)
	// Announce what exceeds the protocol's initial values in the first packet.
	c.needMaxStreams = c.maxRemote > initialMaxStreams
	c.recvWin.window = max(c.recvWin.window, initialStreamWindow*3/2)
	c.needMaxData = c.recvWin.window > initialConnWindow
	c.recvWin.limit = c.recvWin.window
	return c
}

var _ transport.Conn = (*conn)(nil)
var _ transport.PathSubscriber = (*conn)(nil)

func (c *conn) LocalPeer() peer.ID               { return c.sess.LocalPeer() }
func (c *conn) RemotePeer() peer.ID              { return c.sess.RemotePeer() }
func (c *conn) RemotePublicKey() *peer.PublicKey { return c.sess.RemotePublicKey() }
func (c *conn) LocalMultiaddr() ma.Multiaddr     { return c.m.cfg.LocalAddr }
func (c *conn) Transport() string                { return "udp" }
func (c *conn) Close() error                     { return c.CloseWithError(transport.CodeNoError, "") }

// Done is closed when the Conn has ended. The channel is made on the first
// call: an idle Conn nobody waits on should not hold one (Finished answers
// the same question without it).
func (c *conn) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
	}
	return c.done
}

// Finished reports whether the Conn has ended (Done is closed), without
// making a channel or taking the Conn's lock.
func (c *conn) Finished() bool { return c.ended.Load() }

// closedChan is the Done of a Conn that ended before anyone asked.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func (c *conn) String() string {
	return fmt.Sprintf("mux conn to %s", c.sess.RemotePeer().ShortString())
}
func (c *conn) RemoteMultiaddr() ma.Multiaddr {
	a, err := transport.FromAddrPort(c.sess.RemoteAddr(), "/ipv8")
	if err != nil {
		return nil
	}
	return a
}

// CloseWithError sends CLOSE with code and reason and ends the connection;
// streams and blocked calls fail with a *transport.ConnError.
func (c *conn) CloseWithError(code transport.ErrorCode, reason string) error {
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closeLocked(&transport.ConnError{Code: code, Reason: reason}, &closeFrame{code: uint64(code), reason: []byte(reason)})
	c.mu.Unlock()
	c.m.schedule(c)
	select {
	case <-c.Done():
	case <-c.m.exited: // the Muxer closed meanwhile and finished every conn
	}
	return nil
}

// Abort closes the connection because of cause (its handshake failed, say):
// the remote gets code and cause's text, and local calls fail with a
// *transport.ConnError that wraps cause.
func (c *conn) Abort(code transport.ErrorCode, cause error) error {
	reason := cause.Error()
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closeLocked(&transport.ConnError{Code: code, Reason: reason, Err: cause}, &closeFrame{code: uint64(code), reason: []byte(reason)})
	c.mu.Unlock()
	c.m.schedule(c)
	select {
	case <-c.Done():
	case <-c.m.exited:
	}
	return nil
}

// closeLocked moves the connection to closed: every waiter wakes and fails
// with err. With f set, the loop sends f and then finishes; without, it
// finishes at once.
func (c *conn) closeLocked(err error, f *closeFrame) {
	if c.closed {
		return
	}
	c.closed = true
	c.closeErr = err
	c.closeSend = f
	for _, s := range c.streams {
		s.wakeAll()
	}
	for i := 0; i < c.q.acceptLen(); i++ {
		(*c.q.accept.at(i)).wakeAll()
	}
	signal(c.acceptWake)
	signal(c.openWake)
	if c.dg != nil {
		signal(c.dg.wake)
	}
	c.path.closeAll()
	c.m.schedule(c)
}

// finish releases the session and signals Done; called by the loop once a
// closed connection has nothing left to send.
func (c *conn) finishLocked() {
	if c.finished {
		return
	}
	c.finished = true
	for id, s := range c.streams {
		s.releaseBuffers()
		delete(c.streams, id)
	}
	c.sent, c.frames = deque[sentPacket]{}, deque[frameRecord]{}
	if c.q != nil {
		c.q.send, c.q.ctrl = deque[*stream]{}, deque[*stream]{}
	}
	if c.dg != nil {
		c.dg.out, c.dg.in = deque[[]byte]{}, deque[[]byte]{}
	}
	c.ended.Store(true)
	if c.done == nil {
		c.done = closedChan
	} else {
		close(c.done)
	}
}

// OpenStream opens a stream for p. Its STREAM_OPEN frame carries p and the
// first data, so the remote learns the protocol with no round trip; it
// blocks only while the remote's stream limit is reached.
func (c *conn) OpenStream(ctx context.Context, p protocol.ID) (transport.Stream, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	for {
		if c.closed {
			err := c.closeErr
			c.mu.Unlock()
			return nil, err
		}
		if c.nextLocal < c.peerMaxStreams {
			break
		}
		if c.openWake == nil {
			c.openWake = make(chan struct{}, 1)
		}
		wake := c.openWake
		c.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		c.mu.Lock()
	}
	id := c.nextLocal<<1 | c.localParity()
	c.nextLocal++
	s := newStream(c, id, p, true)
	s.needOpen = true
	c.addStream(s)
	c.queueStream(s)
	if c.nextLocal < c.peerMaxStreams {
		signal(c.openWake) // let another waiting opener go
	}
	c.mu.Unlock()
	c.m.schedule(c)
	return s, nil
}

// AcceptStream waits for the next stream the remote opened. After
// SetCallbacks it fails with ErrCallbacksInstalled.
func (c *conn) AcceptStream(ctx context.Context) (transport.Stream, error) {
	return waitTake(ctx, c, func() *chan struct{} { return &c.acceptWake }, func() (transport.Stream, bool) {
		if c.q.acceptLen() == 0 {
			return nil, false
		}
		s := c.q.accept.popFront()
		if c.q.acceptLen() > 0 {
			signal(c.acceptWake)
		}
		return s, true
	})
}

// waitTake is the loop of the Conn's blocking receives (AcceptStream,
// ReceiveDatagram). With c.mu held, take returns the next item if there is
// one (and wakes the next waiter when more are left); otherwise the call
// fails once callbacks are installed or the Conn is closed, or sleeps on
// the channel wake points to (made on first use) until it is signalled or
// ctx ends.
func waitTake[T any](ctx context.Context, c *conn, wake func() *chan struct{}, take func() (T, bool)) (T, error) {
	var zero T
	c.mu.Lock()
	for {
		if c.cb.set {
			signal(*wake()) // the next waiter, if any, fails too
			c.mu.Unlock()
			return zero, ErrCallbacksInstalled
		}
		if v, ok := take(); ok {
			c.mu.Unlock()
			return v, nil
		}
		if c.closed {
			err := c.closeErr
			c.mu.Unlock()
			return zero, err
		}
		w := wake()
		if *w == nil {
			*w = make(chan struct{}, 1)
		}
		ch := *w
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return zero, ctx.Err()
		}
		c.mu.Lock()
	}
}

func (c *conn) localParity() uint64 {
	if c.initiator {
		return 0
	}
	return 1
}

func (c *conn) isLocalID(id uint64) bool { return id&1 == c.localParity() }

// MaxDatagramSize is the largest datagram that fits one packet.
func (c *conn) MaxDatagramSize() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxDatagramLocked()
}

func (c *conn) maxDatagramLocked() int {
	return c.maxPacket - maxHeaderLen - datagramFrameOverhead(c.maxPacket)
}

// SendDatagram queues b for the next packet. Datagrams are congestion
// controlled and never retransmitted; when the queue is full the oldest
// queued datagram is dropped (and counted).
func (c *conn) SendDatagram(b []byte) error {
	if len(b) > c.MaxDatagramSize() {
		return fmt.Errorf("%w: %d bytes, at most %d", transport.ErrDatagramTooLarge, len(b), c.MaxDatagramSize())
	}
	d := append([]byte(nil), b...)
	c.mu.Lock()
	if c.closed {
		err := c.closeErr
		c.mu.Unlock()
		return err
	}
	dg := c.datagrams()
	if dg.out.len() >= c.m.cfg.MaxDatagramQueue {
		dg.out.popFront()
		c.stats.datagramsDropped++
	}
	dg.out.pushBack(d)
	c.mu.Unlock()
	c.m.schedule(c)
	return nil
}

// ReceiveDatagram waits for the next datagram. After SetCallbacks it fails
// with ErrCallbacksInstalled.
func (c *conn) ReceiveDatagram(ctx context.Context) ([]byte, error) {
	return waitTake(ctx, c, func() *chan struct{} { return &c.datagrams().wake }, func() ([]byte, bool) {
		dg := c.datagrams()
		if dg.in.len() == 0 {
			return nil, false
		}
		d := dg.in.popFront()
		if dg.in.len() > 0 {
			signal(dg.wake)
		}
		dg.in.shrink()
		return d, true
	})
}

func (c *conn) addStream(s *stream) {
	if c.streams == nil {
		c.streams = make(map[uint64]*stream)
	}
	c.streams[s.id] = s
}

// queueStream puts s in the send queue (it has data, a FIN or an OPEN to send).
func (c *conn) queueStream(s *stream) {
	if !s.inSendQ {
		s.inSendQ = true
		c.queues().send.pushBack(s)
	}
}

// queueCtrl puts s in the control queue (it has a RESET_STREAM,
// STOP_SENDING or MAX_STREAM_DATA to send).
func (c *conn) queueCtrl(s *stream) {
	if !s.inCtrlQ {
		s.inCtrlQ = true
		c.queues().ctrl.pushBack(s)
	}
}

// signal wakes a waiter on ch without blocking (ch may be nil).
func signal(ch chan struct{}) {
	if ch == nil {
		return
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// dgramState is a Conn's datagram queues, kept apart from the Conn until
// it first sends, receives or waits for a datagram.
type dgramState struct {
	out  deque[[]byte]
	in   deque[[]byte]
	wake chan struct{}
}

// datagrams returns the Conn's datagram queues, making them on first use.
// c.mu is held.
func (c *conn) datagrams() *dgramState {
	if c.dg == nil {
		c.dg = new(dgramState)
	}
	return c.dg
}

func (d *dgramState) outLen() int {
	if d == nil {
		return 0
	}
	return d.out.len()
}

func (d *dgramState) inLen() int {
	if d == nil {
		return 0
	}
	return d.in.len()
}

// release gives back rings that grew large and are empty again.
func (d *dgramState) release() {
	if d != nil {
		d.out.shrink()
		d.in.shrink()
	}
}

// streamQueues is a Conn's stream queues, kept apart from the Conn while
// they are all empty (most of an idle Conn's life).
type streamQueues struct {
	accept deque[*stream] // opened by the remote, not yet accepted
	send   deque[*stream] // streams with data, FIN or OPEN to send
	ctrl   deque[*stream] // streams with control frames to send
}

// queues returns the Conn's stream queues, making them if need be. c.mu
// is held.
func (c *conn) queues() *streamQueues {
	if c.q == nil {
		c.q = new(streamQueues)
	}
	return c.q
}

// releaseQueues drops the queues when they are all empty. c.mu is held.
func (c *conn) releaseQueues() {
	if q := c.q; q != nil && q.accept.len() == 0 && q.send.len() == 0 && q.ctrl.len() == 0 {
		c.q = nil
	}
}

func (q *streamQueues) acceptLen() int {
	if q == nil {
		return 0
	}
	return q.accept.len()
}

func (q *streamQueues) sendLen() int {
	if q == nil {
		return 0
	}
	return q.send.len()
}

func (q *streamQueues) ctrlLen() int {
	if q == nil {
		return 0
	}
	return q.ctrl.len()
}
