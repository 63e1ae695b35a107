package reliable

import (
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/ipv8/go-ipv8/protocol"
	"github.com/ipv8/go-ipv8/transport"
)

// Errors of a stream used after the application closed a direction.
var (
	ErrWriteClosed = fmt.Errorf("reliable: write on a stream closed for writing: %w", net.ErrClosed)
	ErrReadClosed  = fmt.Errorf("reliable: read on a stream closed for reading: %w", net.ErrClosed)
)

// stream is one bidirectional stream. Its state is guarded by its
// connection's mutex; its application-facing methods block on small wake
// channels, created on first use.
type stream struct {
	c     *conn
	id    uint64
	proto protocol.ID
	local bool // we opened it

	// Send side.
	sendBuf      chunkBuf
	writeOff     uint64   // bytes the application wrote
	sentOff      uint64   // the new-data frontier: bytes sent at least once
	ackedOff     uint64   // every byte below is acknowledged
	acked        rangeSet // acknowledged spans above ackedOff
	retx         rangeSet // lost spans to send again
	peerMax      uint64   // the peer's MAX_STREAM_DATA
	writeShut    bool     // CloseWrite: a FIN follows the data
	finSent      bool
	finAcked     bool // the FIN and all data before it are acknowledged
	finDelivered bool // the frame carrying the FIN was acknowledged
	needOpen     bool // an OPEN-form frame must be sent even without data
	openAcked    bool // a STREAM_OPEN was acknowledged: send plain STREAM frames
	sendErr      error
	needReset    bool
	resetCode    uint64
	resetSent    bool
	resetAcked   bool
	needStop     bool
	stopCode     uint64
	stopSent     bool

	// Receive side.
	recvBuf   chunkBuf
	recvd     rangeSet
	readOff   uint64
	highest   uint64 // highest offset received
	finalSize uint64
	finKnown  bool
	recvWin   recvWindow
	needMSD   bool
	readShut  bool
	recvErr   error
	recvReset bool // RESET_STREAM received
	readEOF   bool
	accepted  bool // a remote stream whose protocol arrived (queued or handed to AcceptStream)
	removed   bool

	inSendQ, inCtrlQ bool

	readWake, writeWake chan struct{}
	readDL, writeDL     deadline
}

func newStream(c *conn, id uint64, p protocol.ID, local bool) *stream {
	return &stream{
		c: c, id: id, proto: p, local: local,
		peerMax: initialStreamWindow,
		recvWin: newRecvWindow(initialStreamWindow, c.m.cfg.MaxStreamWindow),
	}
}

var _ transport.Stream = (*stream)(nil)

func (s *stream) Protocol() protocol.ID { return s.proto }
func (s *stream) Conn() transport.Conn  { return s.c }
func (s *stream) LocalAddr() net.Addr   { return streamAddr{s.c.LocalMultiaddr()} }
func (s *stream) RemoteAddr() net.Addr  { return streamAddr{s.c.RemoteMultiaddr()} }
func (s *stream) SetReadDeadline(t time.Time) error {
	s.readDL.set(t)
	return nil
}
func (s *stream) SetWriteDeadline(t time.Time) error {
	s.writeDL.set(t)
	return nil
}
func (s *stream) SetDeadline(t time.Time) error {
	s.readDL.set(t)
	s.writeDL.set(t)
	return nil
}

// Read reads stream data in order; io.EOF after the remote's FIN.
func (s *stream) Read(p []byte) (int, error) {
	c := s.c
	c.mu.Lock()
	for {
		if s.recvErr != nil {
			err := s.recvErr
			c.mu.Unlock()
			return 0, err
		}
		if s.readShut {
			c.mu.Unlock()
			return 0, ErrReadClosed
		}
		if c.closed {
			err := c.closeErr
			c.mu.Unlock()
			return 0, err
		}
		if end := s.recvd.prefixEnd(s.readOff); end > s.readOff {
			if len(p) == 0 {
				c.mu.Unlock()
				return 0, nil
			}
			n := int(min(uint64(len(p)), end-s.readOff))
			s.recvBuf.read(p[:n], s.readOff)
			s.readOff += uint64(n)
			s.recvBuf.release(s.readOff)
			wake := c.onConsumed(s, uint64(n))
			c.mu.Unlock()
			if wake {
				c.m.schedule(c)
			}
			return n, nil
		}
		if s.finKnown && s.readOff == s.finalSize {
			s.readEOF = true
			c.maybeRemove(s)
			c.mu.Unlock()
			return 0, io.EOF
		}
		if s.readWake == nil {
			s.readWake = make(chan struct{}, 1)
		}
		wake := s.readWake
		c.mu.Unlock()
		select {
		case <-wake:
		case <-s.readDL.wait():
			return 0, os.ErrDeadlineExceeded
		}
		c.mu.Lock()
	}
}

// Write copies p into the stream's send buffer, blocking while the buffer
// is full. It returns once all of p is buffered (not acknowledged).
func (s *stream) Write(p []byte) (int, error) {
	c := s.c
	total := 0
	queued := false
	c.mu.Lock()
	for len(p) > 0 {
		if err := s.writeErrLocked(); err != nil {
			c.mu.Unlock()
			if queued {
				c.m.schedule(c)
			}
			return total, err
		}
		// The buffer limit counts bytes not yet acknowledged: a hole left
		// by a lost packet must not stall a fast sender while it is
		// repaired. The memory held (up to the hole) is bounded at 4×.
		limit := uint64(max(c.m.cfg.StreamSendBuffer, 2*c.cc.window()))
		held := s.writeOff - s.ackedOff
		if used := held - s.ackedAbove(); used < limit && held < 4*limit {
			n := int(min(uint64(len(p)), limit-used, 4*limit-held))
			s.sendBuf.write(s.writeOff, p[:n])
			s.writeOff += uint64(n)
			p = p[n:]
			total += n
			c.queueStream(s)
			queued = true
			continue
		}
		if s.writeWake == nil {
			s.writeWake = make(chan struct{}, 1)
		}
		wake := s.writeWake
		c.mu.Unlock()
		if queued {
			c.m.schedule(c)
			queued = false
		}
		select {
		case <-wake:
		case <-s.writeDL.wait():
			return total, os.ErrDeadlineExceeded
		}
		c.mu.Lock()
	}
	c.mu.Unlock()
	if queued {
		c.m.schedule(c)
	}
	return total, nil
}

func (s *stream) writeErrLocked() error {
	switch {
	case s.sendErr != nil:
		return s.sendErr
	case s.c.closed:
		return s.c.closeErr
	case s.writeShut:
		return ErrWriteClosed
	}
	return nil
}

// CloseWrite sends a FIN after the buffered data.
func (s *stream) CloseWrite() error {
	c := s.c
	c.mu.Lock()
	if s.writeShut || s.sendErr != nil || c.closed {
		c.mu.Unlock()
		return nil
	}
	s.writeShut = true
	c.queueStream(s)
	c.mu.Unlock()
	c.m.schedule(c)
	return nil
}

// CloseRead tells the remote (STOP_SENDING, code 0) that nothing more will
// be read; buffered data is dropped.
func (s *stream) CloseRead() error {
	c := s.c
	c.mu.Lock()
	wake := s.closeReadLocked(uint64(transport.CodeNoError))
	c.mu.Unlock()
	if wake {
		c.m.schedule(c)
	}
	return nil
}

func (s *stream) closeReadLocked(code uint64) bool {
	if s.readShut || s.c.closed {
		return false
	}
	s.readShut = true
	signal(s.readWake)
	complete := s.recvReset || s.readEOF || (s.finKnown && s.recvd.prefixEnd(s.readOff) >= s.finalSize)
	// Give back the connection credit of what arrived but will not be read.
	s.c.onConsumed(s, s.highest-s.readOff)
	s.readOff = s.highest
	s.recvBuf.reset(s.readOff)
	s.recvd = rangeSet{}
	if complete {
		s.c.maybeRemove(s)
		return false
	}
	s.needStop, s.stopCode = true, code
	s.c.queueCtrl(s)
	return true
}

// Close closes both directions: the data written so far is still delivered
// and followed by a FIN; reading stops (CloseRead).
func (s *stream) Close() error {
	c := s.c
	c.mu.Lock()
	wake := false
	if !s.writeShut && s.sendErr == nil && !c.closed {
		s.writeShut = true
		c.queueStream(s)
		wake = true
	}
	if !s.readEOF {
		wake = s.closeReadLocked(uint64(transport.CodeNoError)) || wake
	} else {
		s.readShut = true
	}
	c.mu.Unlock()
	if wake {
		c.m.schedule(c)
	}
	// Nothing can block on the stream now: its deadlines' timers go.
	s.readDL.release()
	s.writeDL.release()
	return nil
}

// Reset aborts both directions: RESET_STREAM and STOP_SENDING with code,
// so the remote's Read and Write fail with a *transport.StreamError.
func (s *stream) Reset(code transport.ErrorCode) error {
	c := s.c
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	err := &transport.StreamError{Code: code, Remote: false, Protocol: s.proto}
	s.abortSendLocked(uint64(code), err)
	if s.recvErr == nil && !s.readEOF {
		s.recvErr = err
		if !s.recvReset && !(s.finKnown && s.recvd.prefixEnd(s.readOff) >= s.finalSize) {
			s.needStop, s.stopCode = true, uint64(code)
			c.queueCtrl(s)
		}
		c.onConsumed(s, s.highest-s.readOff)
		s.readOff = s.highest
		s.recvBuf.reset(s.readOff)
		signal(s.readWake)
	}
	c.maybeRemove(s)
	c.mu.Unlock()
	c.m.schedule(c)
	s.readDL.release()
	s.writeDL.release()
	return nil
}

// abortSendLocked stops the send direction with a RESET_STREAM carrying code.
func (s *stream) abortSendLocked(code uint64, err error) {
	if s.sendErr != nil || s.finAcked {
		if s.sendErr == nil {
			s.sendErr = err
		}
		return
	}
	s.sendErr = err
	s.needReset, s.resetCode = true, code
	s.sendBuf.reset(s.writeOff)
	s.retx = rangeSet{}
	s.acked = rangeSet{}
	s.c.queueCtrl(s)
	signal(s.writeWake)
}

// wakeAll wakes every blocked call (the connection closed).
func (s *stream) wakeAll() {
	signal(s.readWake)
	signal(s.writeWake)
}

func (s *stream) releaseBuffers() {
	s.sendBuf.reset(0)
	s.recvBuf.reset(0)
	s.recvd, s.retx, s.acked = rangeSet{}, rangeSet{}, rangeSet{}
}

// ackedAbove counts the acknowledged bytes above the acknowledged prefix.
func (s *stream) ackedAbove() uint64 {
	n := uint64(0)
	for _, x := range s.acked.s {
		n += x.end - x.start
	}
	return n
}

// sendDone reports whether nothing more will be sent or resent.
func (s *stream) sendDone() bool { return s.finAcked || s.resetAcked }

// recvDone reports whether nothing more will arrive.
func (s *stream) recvDone() bool {
	return s.recvReset || (s.finKnown && (s.readShut || s.recvd.prefixEnd(s.readOff) >= s.finalSize))
}

// maybeRemove forgets a finished stream (frames for it are then ignored)
// and, for a remote stream, lets the peer open another.
func (c *conn) maybeRemove(s *stream) {
	if s.removed || !s.sendDone() || !s.recvDone() {
		return
	}
	s.removed = true
	delete(c.streams, s.id)
	if len(c.streams) == 0 {
		c.streams = nil // a map keeps its table when emptied: an idle Conn holds none
	}
	if !s.local {
		c.remoteDone++
		// Raise the limit in steps of an eighth, not for every stream.
		if c.remoteDone%uint64(max(c.m.cfg.MaxIncomingStreams/8, 1)) == 0 {
			c.needMaxStreams = true
		}
	}
	if s.recvBuf.chunks.len() == 0 {
		s.recvBuf = chunkBuf{}
	}
}

// streamAddr is a multiaddr presented as a net.Addr.
type streamAddr struct{ a interface{ String() string } }

func (a streamAddr) Network() string { return "ipv8" }
func (a streamAddr) String() string {
	if a.a == nil {
		return ""
	}
	return a.a.String()
}
