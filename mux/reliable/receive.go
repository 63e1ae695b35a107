package reliable

import (
	"fmt"
	"time"

	"github.com/ipv8/go-ipv8/protocol"
	"github.com/ipv8/go-ipv8/transport"
)

// receive handles one decrypted payload from the session. It runs on the
// port's read goroutine and must not block: it updates the connection's
// state and, when something must be sent, hands the connection to the
// event loop.
func (c *conn) receive(b []byte) {
	now := c.m.now()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	hdr, n, err := ParsePacketHeader(b)
	if err != nil {
		c.stats.malformed++
		c.mu.Unlock()
		return
	}
	pn := hdr.PacketNumber
	if c.ack.isDuplicate(pn) {
		c.stats.duplicates++
		c.mu.Unlock()
		return
	}
	c.stats.packetsReceived++
	c.stats.bytesReceived += uint64(len(b))
	c.lastRecv = now
	eliciting, err := c.handleFrames(b[n:], now)
	if err != nil {
		// The peer is authenticated, so a frame it cannot have meant is a
		// bug or an attack on its own connection: close, as QUIC does.
		c.m.cfg.Logger.Debug("mux: protocol violation", "peer", c.sess.RemotePeer(), "err", err)
		c.closeLocked(&transport.ConnError{Code: transport.CodeInternal, Reason: err.Error()},
			&closeFrame{code: uint64(transport.CodeInternal), reason: []byte("protocol violation")})
		c.mu.Unlock()
		return
	}
	if c.closed { // the packet carried CLOSE
		c.mu.Unlock()
		return
	}
	c.ack.onReceived(pn, eliciting, now)
	c.checkPath(now)
	wake := c.wantsService(now)
	c.updateTimerLocked(now)
	push := c.needDeliverLocked()
	c.mu.Unlock()
	if wake {
		c.m.schedule(c)
	}
	if push {
		c.deliver()
	}
}

// handleFrames applies every frame of a packet and reports whether one was
// ack-eliciting (anything but ACK).
func (c *conn) handleFrames(b []byte, now time.Duration) (eliciting bool, err error) {
	for len(b) > 0 {
		var n int
		t := b[0]
		if t != typeAck {
			eliciting = true
		}
		switch {
		case t == typePing:
			n, err = parsePingFrame(b)
		case t == typeAck:
			f := &c.ack.scratch // see ackState.scratch
			if n, err = parseAckFrame(b, f); err == nil {
				err = c.onAckFrame(f, now)
			}
		case t == typeAckFrequency:
			var f ackFrequencyFrame
			if f, n, err = parseAckFrequencyFrame(b); err == nil {
				c.ack.onAckFrequency(f)
			}
		case t&^finBit == typeStream:
			var f streamFrame
			if f, n, err = parseStreamFrame(b); err == nil {
				err = c.onStreamFrame(&f, nil)
			}
		case t&^finBit == typeStreamOpen:
			var f streamOpenFrame
			if f, n, err = parseStreamOpenFrame(b); err == nil {
				err = c.onStreamFrame(&f.streamFrame, f.protocol)
			}
		case t == typeResetStream:
			var f resetStreamFrame
			if f, n, err = parseResetStreamFrame(b); err == nil {
				err = c.onResetStream(f)
			}
		case t == typeStopSending:
			var f stopSendingFrame
			if f, n, err = parseStopSendingFrame(b); err == nil {
				err = c.onStopSending(f)
			}
		case t == typeMaxData:
			var f maxDataFrame
			if f, n, err = parseMaxDataFrame(b); err == nil && f.max > c.peerMaxData {
				c.peerMaxData = f.max
			}
		case t == typeMaxStreamData:
			var f maxStreamDataFrame
			if f, n, err = parseMaxStreamDataFrame(b); err == nil {
				err = c.onMaxStreamData(f)
			}
		case t == typeMaxStreams:
			var f maxStreamsFrame
			if f, n, err = parseMaxStreamsFrame(b); err == nil && f.max > c.peerMaxStreams {
				c.peerMaxStreams = f.max
				signal(c.openWake)
			}
		case t == typeDatagram:
			var f datagramFrame
			if f, n, err = parseDatagramFrame(b); err == nil {
				c.onDatagram(f)
			}
		case t == typeClose:
			var f closeFrame
			if f, n, err = parseCloseFrame(b); err == nil {
				c.closeLocked(&transport.ConnError{Code: transport.ErrorCode(f.code), Reason: string(f.reason), Remote: true}, nil)
				return eliciting, nil
			}
		default:
			err = fmt.Errorf("%w %#x", ErrUnknownFrame, t)
		}
		if err != nil {
			return eliciting, err
		}
		b = b[n:]
	}
	return eliciting, nil
}

// streamFor finds the stream a frame names, creating a stream the peer
// opens. It returns nil (and no error) for a stream already finished and
// forgotten: late retransmissions are ignored.
func (c *conn) streamFor(id uint64, proto []byte) (*stream, error) {
	if s, ok := c.streams[id]; ok {
		if proto != nil && !s.local && !s.accepted {
			c.acceptLocked(s, proto)
		}
		return s, nil
	}
	idx := id >> 1
	if c.isLocalID(id) {
		if idx < c.nextLocal {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: stream %d was never opened", ErrInvalidFrame, id)
	}
	if c.remoteSeen.contains(idx) {
		return nil, nil
	}
	if idx >= c.maxRemote+c.remoteDone {
		return nil, fmt.Errorf("%w: stream %d beyond the stream limit %d", ErrInvalidFrame, id, c.maxRemote+c.remoteDone)
	}
	c.remoteSeen.add(idx, idx+1)
	s := newStream(c, id, "", false)
	c.addStream(s)
	if proto != nil {
		c.acceptLocked(s, proto)
	}
	return s, nil
}

func (c *conn) acceptLocked(s *stream, proto []byte) {
	s.proto = protocol.ID(proto)
	s.accepted = true
	c.queues().accept.pushBack(s)
	signal(c.acceptWake)
}

func (c *conn) onStreamFrame(f *streamFrame, proto []byte) error {
	s, err := c.streamFor(f.id, proto)
	if s == nil || err != nil {
		return err
	}
	if proto != nil && s.local {
		return fmt.Errorf("%w: STREAM_OPEN for our own stream %d", ErrInvalidFrame, f.id)
	}
	if s.recvReset {
		return nil
	}
	end := f.offset + uint64(len(f.data))
	if err := c.checkFinalSize(s, end, f.fin); err != nil {
		return err
	}
	if end > s.recvWin.limit {
		return fmt.Errorf("%w: stream %d data to %d beyond its window %d", ErrInvalidFrame, f.id, end, s.recvWin.limit)
	}
	if err := c.growHighest(s, end); err != nil {
		return err
	}
	if f.fin {
		s.finKnown, s.finalSize = true, end
	}
	if s.readShut || s.recvErr != nil {
		// Nobody reads: give the credit straight back.
		if s.highest > s.readOff {
			c.onConsumed(s, s.highest-s.readOff)
			s.readOff = s.highest
		}
		c.maybeRemove(s)
		return nil
	}
	off, data := f.offset, f.data
	if off < s.readOff {
		if end <= s.readOff {
			data = nil
		} else {
			data = data[s.readOff-off:]
			off = s.readOff
		}
	}
	if len(data) > 0 && s.recvd.add(off, end) > 0 {
		s.recvBuf.write(off, data)
		if off <= s.readOff {
			signal(s.readWake)
		}
	}
	if f.fin {
		signal(s.readWake)
		c.maybeRemove(s)
	}
	return nil
}

// checkFinalSize enforces that a stream's final size never changes.
func (c *conn) checkFinalSize(s *stream, end uint64, fin bool) error {
	if s.finKnown && (end > s.finalSize || (fin && end != s.finalSize)) {
		return fmt.Errorf("%w: stream %d final size changed", ErrInvalidFrame, s.id)
	}
	if fin && end < s.highest {
		return fmt.Errorf("%w: stream %d final size below data received", ErrInvalidFrame, s.id)
	}
	return nil
}

// growHighest accounts data up to end against the connection's window.
func (c *conn) growHighest(s *stream, end uint64) error {
	if end <= s.highest {
		return nil
	}
	c.recvHighest += end - s.highest
	s.highest = end
	if c.recvHighest > c.recvWin.limit {
		return fmt.Errorf("%w: connection data %d beyond its window %d", ErrInvalidFrame, c.recvHighest, c.recvWin.limit)
	}
	return nil
}

func (c *conn) onResetStream(f resetStreamFrame) error {
	s, err := c.streamFor(f.id, nil)
	if s == nil || err != nil || s.recvReset {
		return err
	}
	if err := c.checkFinalSize(s, f.finalSize, true); err != nil {
		return err
	}
	if f.finalSize > s.recvWin.limit {
		return fmt.Errorf("%w: stream %d final size beyond its window", ErrInvalidFrame, f.id)
	}
	if err := c.growHighest(s, f.finalSize); err != nil {
		return err
	}
	s.recvReset = true
	s.finKnown, s.finalSize = true, f.finalSize
	if s.recvErr == nil && !s.readShut && !s.readEOF {
		s.recvErr = &transport.StreamError{Code: transport.ErrorCode(f.code), Remote: true, Protocol: s.proto}
	}
	if s.highest > s.readOff {
		c.onConsumed(s, s.highest-s.readOff)
		s.readOff = s.highest
	}
	s.recvBuf.reset(s.readOff)
	s.recvd = rangeSet{}
	signal(s.readWake)
	if !s.local && !s.accepted {
		// The application never saw this stream: nothing will ever be
		// sent on it, so it is finished both ways.
		s.sendErr, s.resetAcked = s.recvErr, true
	}
	c.maybeRemove(s)
	return nil
}

func (c *conn) onStopSending(f stopSendingFrame) error {
	s, err := c.streamFor(f.id, nil)
	if s == nil || err != nil {
		return err
	}
	s.abortSendLocked(f.code, &transport.StreamError{Code: transport.ErrorCode(f.code), Remote: true, Protocol: s.proto})
	c.maybeRemove(s)
	return nil
}

func (c *conn) onMaxStreamData(f maxStreamDataFrame) error {
	s, err := c.streamFor(f.id, nil)
	if s == nil || err != nil {
		return err
	}
	if f.max > s.peerMax {
		s.peerMax = f.max
		if s.sentOff < s.writeOff && s.sendErr == nil {
			c.queueStream(s)
		}
	}
	return nil
}

func (c *conn) onDatagram(f datagramFrame) {
	if c.dg.inLen() >= c.m.cfg.MaxDatagramQueue {
		c.stats.datagramsDropped++
		return
	}
	dg := c.datagrams()
	dg.in.pushBack(append([]byte(nil), f.data...))
	signal(dg.wake)
}

// onConsumed returns flow-control credit for n bytes the application read
// (or will never read) on s, and queues window updates when due. It
// reports whether the event loop should run.
func (c *conn) onConsumed(s *stream, n uint64) bool {
	now := c.m.now()
	srtt := c.rtt.srtt()
	wake := false
	if s != nil && !s.readShut && s.recvErr == nil && !s.finKnown {
		s.recvWin.consumed += n
		if s.recvWin.needsUpdate() {
			if s.recvWin.advance(now, srtt) {
				c.recvWin.ensure(s.recvWin.window * 3 / 2)
			}
			s.needMSD = true
			c.queueCtrl(s)
			wake = true
		}
	}
	c.recvWin.consumed += n
	if c.recvWin.needsUpdate() {
		c.recvWin.advance(now, srtt)
		c.needMaxData = true
		wake = true
	}
	return wake
}
