package reliable

import "time"

// buildPackets fills bufs with the packets the connection may send now:
// ACKs whenever one is due, and everything else as far as the congestion
// window and the pacer allow. It runs on the event loop with c.mu held;
// the loop hands the packets to the session after unlocking. more says
// the connection could fill another batch at once.
func (c *conn) buildPackets(now time.Duration, bufs [][]byte) (n int, more bool) {
	if c.closed {
		if c.closeSend != nil {
			b := PacketHeader{PacketNumber: c.nextPN}.Append(bufs[0][:0])
			c.nextPN++
			bufs[0] = c.closeSend.append(b)
			c.closeSend = nil
			return 1, false
		}
		return 0, false
	}
	c.pacingBlocked = false
	for n < len(bufs) {
		sendData := false
		if c.hasPending() && (c.probes > 0 || c.bytesInFlight < c.cc.window()) {
			if c.probes > 0 || c.pacer.canSend(now) {
				sendData = true
			} else {
				c.pacingBlocked = true
			}
		}
		if !sendData && !c.ack.due(now) {
			break
		}
		b, ok := c.buildPacket(bufs[n][:0], now, sendData)
		if !ok {
			break
		}
		bufs[n] = b
		n++
	}
	if !c.hasPending() && c.bytesInFlight < c.cc.window() {
		// Nothing to send with room in the window: delivery-rate samples
		// until this data is acknowledged say more about the application
		// than about the path.
		c.appLimitedUntil = max(c.delivered+uint64(c.bytesInFlight), 1)
		c.cc.onAppLimited()
	}
	more = n == len(bufs) && !c.pacingBlocked &&
		(c.ack.due(now) || (c.hasPending() && c.bytesInFlight < c.cc.window()))
	return n, more
}

// hasPending reports whether anything but an ACK waits to be sent.
func (c *conn) hasPending() bool {
	return c.q.sendLen() > 0 || c.q.ctrlLen() > 0 || c.dg.outLen() > 0 ||
		c.needMaxData || c.needMaxStreams || c.needAckFreq || c.needPing || c.probes > 0
}

// buildPacket writes one packet into b. It reports false when the packet
// would carry nothing worth sending.
func (c *conn) buildPacket(b []byte, now time.Duration, data bool) ([]byte, bool) {
	pn := c.nextPN
	b = PacketHeader{PacketNumber: pn}.Append(b)
	limit := c.maxPacket
	firstFrame := c.framesBase + uint64(c.frames.len())
	hasAck := false
	if c.ack.pending {
		f := c.ack.frame(now)
		if len(f.ranges) > 0 {
			b = f.append(b)
			hasAck = true
		}
	}
	eliciting := false
	if data {
		start := len(b)
		b = c.appendControlFrames(b, limit)
		for c.dg.outLen() > 0 {
			d := *c.dg.out.front()
			if len(d) > c.maxDatagramLocked() {
				c.dg.out.popFront() // the packet size shrank under it
				c.stats.datagramsDropped++
				continue
			}
			if len(b)+datagramFrameOverhead(len(d))+len(d) > limit {
				break
			}
			b = datagramFrame{data: d}.append(b)
			c.dg.out.popFront()
		}
		c.dg.release()
		b = c.appendStreamFrames(b, limit)
		if c.needPing || (c.probes > 0 && len(b) == start) {
			b = appendPingFrame(b)
			c.needPing = false
		}
		eliciting = len(b) > start
	}
	if !eliciting && !hasAck {
		return b, false
	}
	c.nextPN++
	nFrames := uint32(c.framesBase + uint64(c.frames.len()) - firstFrame)
	p := sentPacket{sentAt: now, size: uint32(len(b)), firstFrame: firstFrame, nFrames: nFrames}
	if eliciting {
		p.flags = pktAckEliciting | pktInFlight
		if c.bytesInFlight == 0 {
			c.firstSentAt, c.deliveredAt = now, now
		}
		p.delivered, p.deliveredAt, p.firstSentAt = c.delivered, c.deliveredAt, c.firstSentAt
		if c.appLimitedUntil != 0 {
			p.flags |= pktAppLimited
		}
		c.bytesInFlight += len(b)
		c.elicitingInFlt++
		c.lastElicitSent = now
		c.pacer.onSent(len(b))
		c.cc.onPacketSent(now, len(b), c.bytesInFlight)
		if c.probes > 0 {
			c.probes--
		}
	} else {
		// An ACK-only packet is neither in flight nor ever waited for.
		p.flags = pktAcked
		if c.sent.len() == 0 && nFrames == 0 {
			// Nothing before it to wait for either: it is resolved as
			// it leaves, so it skips the history (an idle connection
			// answering its peer's keep-alives keeps none).
			c.sentBase++
			c.stats.packetsSent++
			c.stats.bytesSent += uint64(len(b))
			c.lastSent = now
			return b, true
		}
	}
	c.sent.pushBack(p)
	c.stats.packetsSent++
	c.stats.bytesSent += uint64(len(b))
	c.lastSent = now
	return b, true
}

// appendControlFrames writes the connection's and streams' control frames
// that fit.
func (c *conn) appendControlFrames(b []byte, limit int) []byte {
	if c.needAckFreq {
		f := ackFrequencyFrame{seq: uint64(c.ackFreqSeq) + 1, threshold: uint64(c.ackFreqThreshold), maxAckDelay: c.ackFreqDelay}
		if f.threshold == 0 {
			f.threshold, f.maxAckDelay = defaultAckThreshold, defaultMaxAckDelay
		}
		if len(b)+f.length() <= limit {
			c.ackFreqSeq++
			c.ackFreqAt = c.m.now()
			c.peerMaxAckDelay = max(f.maxAckDelay, defaultMaxAckDelay)
			b = f.append(b)
			c.recordFrame(frameRecord{kind: frAckFrequency})
			c.needAckFreq = false
		}
	}
	if c.needMaxData {
		f := maxDataFrame{max: c.recvWin.limit}
		if len(b)+f.length() <= limit {
			b = f.append(b)
			c.recordFrame(frameRecord{kind: frMaxData})
			c.needMaxData = false
		}
	}
	if c.needMaxStreams {
		f := maxStreamsFrame{max: c.maxRemote + c.remoteDone}
		if len(b)+f.length() <= limit {
			b = f.append(b)
			c.recordFrame(frameRecord{kind: frMaxStreams})
			c.needMaxStreams = false
		}
	}
	for c.q.ctrlLen() > 0 {
		s := *c.q.ctrl.front()
		if s.needReset {
			f := resetStreamFrame{id: s.id, code: s.resetCode, finalSize: s.sentOff}
			if len(b)+f.length() > limit {
				break
			}
			b = f.append(b)
			c.recordFrame(frameRecord{kind: frReset, s: s})
			s.needReset, s.resetSent = false, true
		}
		if s.needStop {
			f := stopSendingFrame{id: s.id, code: s.stopCode}
			if len(b)+f.length() > limit {
				break
			}
			b = f.append(b)
			c.recordFrame(frameRecord{kind: frStop, s: s})
			s.needStop, s.stopSent = false, true
		}
		if s.needMSD {
			if !s.removed && !s.finKnown && !s.readShut {
				f := maxStreamDataFrame{id: s.id, max: s.recvWin.limit}
				if len(b)+f.length() > limit {
					break
				}
				b = f.append(b)
				c.recordFrame(frameRecord{kind: frMaxStreamData, s: s})
			}
			s.needMSD = false
		}
		c.q.ctrl.popFront()
		s.inCtrlQ = false
	}
	if c.q != nil {
		c.q.ctrl.shrink()
	}
	return b
}

// appendStreamFrames fills the rest of the packet with stream data,
// serving the send queue round-robin: the stream at the front fills what
// it can, and moves to the back if it has more.
func (c *conn) appendStreamFrames(b []byte, limit int) []byte {
	served := false
	for c.q.sendLen() > 0 {
		space := limit - len(b)
		if space < 24 {
			break
		}
		s := *c.q.send.front()
		var wrote, more bool
		b, wrote, more = c.appendStreamFrame(b, s, space)
		if !more {
			c.q.send.popFront()
			s.inSendQ = false
		}
		if wrote {
			served = true
		} else if more {
			break // held back by the connection's flow-control limit
		}
	}
	if served && c.q.sendLen() > 1 {
		s := c.q.send.popFront()
		c.q.send.pushBack(s)
	}
	if c.q != nil {
		c.q.send.shrink()
	}
	return b
}

// appendStreamFrame writes one frame of s: lost data first, then new data,
// then a lone FIN or OPEN. wrote says a frame was written, more that s
// still has something to send.
func (c *conn) appendStreamFrame(b []byte, s *stream, space int) (_ []byte, wrote, more bool) {
	if s.sendErr != nil {
		return b, false, false
	}
	open := s.local && !s.openAcked
	for !s.retx.empty() {
		sp, _ := s.retx.first()
		if sp.end <= s.ackedOff {
			s.retx.popFirst(sp.end - sp.start)
			continue
		}
		if sp.start < s.ackedOff {
			s.retx.trimBelow(s.ackedOff)
			continue
		}
		maxN := space - c.streamOverhead(s, sp.start, space, open)
		if maxN <= 0 {
			return b, false, true
		}
		sp = s.retx.popFirst(uint64(maxN))
		fin := s.writeShut && !s.finSent && sp.end == s.writeOff && s.sentOff == s.writeOff
		b = c.appendStreamData(b, s, sp.start, int(sp.end-sp.start), fin, open)
		c.stats.retransmissions++
		return b, true, c.sendable(s)
	}
	if avail := s.writeOff - s.sentOff; avail > 0 {
		credit := min(avail, c.peerMaxData-c.sentData)
		if s.peerMax > s.sentOff {
			credit = min(credit, s.peerMax-s.sentOff)
		} else {
			credit = 0
		}
		if credit == 0 {
			// Blocked by flow control: a stream-level block leaves the
			// queue until MAX_STREAM_DATA; a connection-level one stays.
			return b, false, s.sentOff < s.peerMax
		}
		maxN := space - c.streamOverhead(s, s.sentOff, space, open)
		if maxN <= 0 {
			return b, false, true
		}
		n := int(min(credit, uint64(maxN)))
		fin := s.writeShut && s.sentOff+uint64(n) == s.writeOff
		b = c.appendStreamData(b, s, s.sentOff, n, fin, open)
		s.sentOff += uint64(n)
		c.sentData += uint64(n)
		return b, true, c.sendable(s)
	}
	finDue := s.writeShut && !s.finSent
	if finDue || (s.needOpen && open) {
		if space < c.streamOverhead(s, s.sentOff, 0, open) {
			return b, false, true
		}
		b = c.appendStreamData(b, s, s.sentOff, 0, finDue, open)
		return b, true, c.sendable(s)
	}
	return b, false, false
}

func (c *conn) streamOverhead(s *stream, off uint64, n int, open bool) int {
	if open {
		return streamOpenFrameOverhead(s.id, s.proto, off, n)
	}
	return streamFrameOverhead(s.id, off, n)
}

// appendStreamData writes a STREAM (or STREAM_OPEN) frame with n bytes of
// s at off, copied straight from the send buffer, and records it.
func (c *conn) appendStreamData(b []byte, s *stream, off uint64, n int, fin, open bool) []byte {
	t := byte(typeStream)
	if open {
		t = typeStreamOpen
	}
	if fin {
		t |= finBit
		s.finSent = true
	}
	b = appendVarint(append(b, t), s.id)
	if open {
		b = append(append(b, byte(len(s.proto))), s.proto...)
		s.needOpen = false
	}
	b = appendVarint(b, off)
	b = appendVarint(b, uint64(n))
	b = s.sendBuf.appendTo(b, off, n)
	c.recordFrame(frameRecord{kind: frStream, s: s, off: off, n: uint32(n), fin: fin, open: open})
	return b
}

// sendable reports whether s has something the send queue must serve.
func (c *conn) sendable(s *stream) bool {
	if s.sendErr != nil {
		return false
	}
	return !s.retx.empty() ||
		(s.sentOff < s.writeOff && s.sentOff < s.peerMax) ||
		(s.writeShut && !s.finSent && s.sentOff == s.writeOff) ||
		(s.needOpen && s.local && !s.openAcked)
}

func (c *conn) recordFrame(f frameRecord) { c.frames.pushBack(f) }
