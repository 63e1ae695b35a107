package reliable

import (
	"fmt"
	"time"
)

// sentPacket is what the sender remembers of a packet until it is
// acknowledged or declared lost. Packets are kept in a ring indexed by
// packet number (numbers are never skipped), and their frames in a second
// ring, so recording a packet allocates nothing.
type sentPacket struct {
	sentAt      time.Duration
	deliveredAt time.Duration
	firstSentAt time.Duration
	delivered   uint64
	firstFrame  uint64 // index into conn.frames
	nFrames     uint32
	size        uint32
	flags       uint8
}

const (
	pktAckEliciting = 1 << iota
	pktInFlight
	pktAcked
	pktLost
	pktAppLimited
)

func (p *sentPacket) resolved() bool { return p.flags&(pktAcked|pktLost) != 0 }

// Kinds of frame records: what to do when a packet is acknowledged or lost.
const (
	frStream = iota
	frReset
	frStop
	frMaxStreamData
	frMaxData
	frMaxStreams
	frAckFrequency
)

type frameRecord struct {
	s    *stream
	off  uint64
	n    uint32
	kind uint8
	fin  bool
	open bool
}

// onAckFrame processes an ACK (RFC 9002 §A.7): newly acknowledged packets
// leave the flight, their frames are done, the RTT gets a sample, losses
// are detected, and the congestion controller learns the delivery rate.
func (c *conn) onAckFrame(f *ackFrame, now time.Duration) error {
	largest := f.largest()
	if largest >= c.nextPN {
		return fmt.Errorf("%w: ACK of packet %d never sent", ErrInvalidFrame, largest)
	}
	if largest < c.sentBase {
		return nil // acknowledges only what is already resolved
	}
	if c.recentLost.len() > 0 {
		c.checkSpurious(f, now)
	}
	priorInFlight := c.bytesInFlight
	rs := rateSample{priorInFlight: priorInFlight}
	var priorDelivered uint64
	var priorAt, sendElapsed time.Duration
	hasPrior := false
	ackedBytes := 0
	var rttSample time.Duration
	for _, r := range f.ranges {
		if r.largest < c.sentBase {
			break
		}
		lo := max(r.smallest, c.sentBase)
		for pn := lo; pn <= r.largest; pn++ {
			p := c.sent.at(int(pn - c.sentBase))
			if p.flags&pktAcked != 0 {
				continue
			}
			if p.flags&pktLost != 0 {
				continue
			}
			p.flags |= pktAcked
			c.onPacketAcked(p)
			if p.flags&pktInFlight != 0 {
				c.bytesInFlight -= int(p.size)
				if p.flags&pktAckEliciting != 0 {
					c.elicitingInFlt--
				}
				ackedBytes += int(p.size)
				c.delivered += uint64(p.size)
				c.deliveredAt = now
				if !hasPrior || p.delivered > priorDelivered {
					hasPrior = true
					priorDelivered, priorAt = p.delivered, p.deliveredAt
					sendElapsed = p.sentAt - p.firstSentAt
					rs.appLimited = p.flags&pktAppLimited != 0
					c.firstSentAt = p.sentAt
				}
				if p.delivered >= c.roundEnd {
					rs.newRound = true
				}
			}
			if pn == largest && p.flags&pktAckEliciting != 0 {
				rttSample = now - p.sentAt
			}
		}
	}
	if !c.hasLargestAcked || largest > c.largestAcked {
		c.largestAcked, c.hasLargestAcked = largest, true
		if rttSample > 0 {
			c.rtt.update(rttSample, f.ackDelay, c.peerMaxAckDelay)
			rs.rtt = rttSample
		}
	}
	if ackedBytes == 0 {
		c.detectLoss(now)
		c.popResolved()
		return nil
	}
	c.ptoCount = 0
	if rs.newRound {
		c.round++
		c.roundEnd = c.delivered
	}
	if c.appLimitedUntil != 0 && c.delivered > c.appLimitedUntil {
		c.appLimitedUntil = 0
	}
	if hasPrior {
		rs.delivered = c.delivered - priorDelivered
		rs.interval = max(sendElapsed, c.deliveredAt-priorAt)
		if rs.interval >= max(c.rtt.min, time.Microsecond) && rs.interval > 0 {
			rs.deliveryRate = uint64(float64(rs.delivered) / rs.interval.Seconds())
		}
	}
	if rs.deliveryRate > 0 && (!rs.appLimited || rs.deliveryRate > uint64(c.bwFilter.get())) {
		c.bwFilter.update(int64(rs.deliveryRate), c.round, bbrBwWindowRounds)
	}
	rs.lost = c.detectLoss(now)
	c.cc.onAck(now, ackedBytes, &rs)
	c.pacer.setRate(c.cc.pacingRate(c.rtt.srtt()), c.maxPacket)
	c.popResolved()
	c.maybeUpdateAckFrequency(now)
	c.path.onAck(c, now)
	return nil
}

// onPacketAcked marks the frames of p delivered.
func (c *conn) onPacketAcked(p *sentPacket) {
	for i := uint64(0); i < uint64(p.nFrames); i++ {
		fr := c.frames.at(int(p.firstFrame + i - c.framesBase))
		s := fr.s
		switch fr.kind {
		case frStream:
			if fr.open {
				s.openAcked = true
			}
			if s.sendErr != nil {
				continue
			}
			end := fr.off + uint64(fr.n)
			if !s.retx.empty() {
				s.retx.remove(fr.off, end)
			}
			if fr.n > 0 && end > s.ackedOff {
				s.acked.add(max(fr.off, s.ackedOff), end)
				if newOff := s.acked.prefixEnd(s.ackedOff); newOff > s.ackedOff {
					s.ackedOff = newOff
					s.acked.trimBelow(newOff)
					s.retx.trimBelow(newOff)
					s.sendBuf.release(newOff)
					signal(s.writeWake)
				}
			}
			if fr.fin {
				s.finDelivered = true
			}
			if s.finDelivered && !s.finAcked && s.ackedOff == s.writeOff {
				s.finAcked = true
				c.maybeRemove(s)
			}
		case frReset:
			s.resetAcked = true
			c.maybeRemove(s)
		}
	}
}

// checkSpurious looks for packets declared lost that this ACK says
// arrived after all: they were only reordered, so tolerate more reordering
// from now on (the packet threshold grows, as in RACK's adaptive window).
func (c *conn) checkSpurious(f *ackFrame, now time.Duration) {
	for c.recentLost.len() > 0 && now-c.recentLost.front().at > 2*c.rtt.srtt() {
		c.recentLost.popFront()
	}
	for i := 0; i < c.recentLost.len(); i++ {
		l := c.recentLost.at(i)
		if l.pn != 0 && f.acks(l.pn-1) {
			l.pn = 0
			c.stats.spuriousLosses++
			c.reorderThresh = min(c.reorderThresh+1, maxPacketThreshold)
		}
	}
}

// lostRecord remembers a packet declared lost, to notice when it was not.
type lostRecord struct {
	pn uint64 // packet number + 1; 0 once found spurious
	at time.Duration
}

// detectLoss declares lost the packets that the packet-number or time
// threshold says will not arrive (RFC 9002 §6.1) and returns the bytes lost.
func (c *conn) detectLoss(now time.Duration) int {
	c.lossTime = 0
	if !c.hasLargestAcked {
		return 0
	}
	lossDelay := max(9*max(c.rtt.srtt(), c.rtt.latest)/8, timerGranularity)
	lostSentBefore := now - lossDelay
	lostBytes := 0
	var largestLostSent time.Duration
	var runStart, runEnd time.Duration // a run of lost ack-eliciting packets with no ack between
	persistent := false
	pcDuration := 3 * c.rtt.pto(c.peerMaxAckDelay)
	end := min(c.largestAcked, c.nextPN-1)
	for pn := c.sentBase; pn <= end && pn >= c.sentBase; pn++ {
		p := c.sent.at(int(pn - c.sentBase))
		if p.flags&pktAcked != 0 {
			runStart = 0
			continue
		}
		if p.flags&pktLost != 0 {
			continue
		}
		if p.sentAt > lostSentBefore && c.largestAcked < pn+uint64(c.reorderThresh) {
			if t := p.sentAt + lossDelay; c.lossTime == 0 || t < c.lossTime {
				c.lossTime = t
			}
			continue
		}
		p.flags |= pktLost
		c.onPacketLost(p)
		if c.recentLost.len() >= 64 {
			c.recentLost.popFront()
		}
		c.recentLost.pushBack(lostRecord{pn: pn + 1, at: now})
		if p.flags&pktInFlight != 0 {
			c.bytesInFlight -= int(p.size)
			lostBytes += int(p.size)
			if p.flags&pktAckEliciting != 0 {
				c.elicitingInFlt--
				if runStart == 0 {
					runStart = max(p.sentAt, 1)
				}
				runEnd = p.sentAt
				if c.rtt.hasSample && runEnd-runStart > pcDuration {
					persistent = true
				}
			}
			largestLostSent = max(largestLostSent, p.sentAt)
			c.stats.packetsLost++
			c.stats.bytesLost += uint64(p.size)
			if c.path != nil {
				c.path.lost++
			}
		}
	}
	if lostBytes > 0 {
		c.cc.onLoss(now, lostBytes, largestLostSent, c.bytesInFlight)
		if persistent {
			c.cc.onPersistentCongestion(now)
		}
		c.pacer.setRate(c.cc.pacingRate(c.rtt.srtt()), c.maxPacket)
	}
	return lostBytes
}

// onPacketLost queues again what the frames of p carried, if still needed.
func (c *conn) onPacketLost(p *sentPacket) {
	for i := uint64(0); i < uint64(p.nFrames); i++ {
		fr := c.frames.at(int(p.firstFrame + i - c.framesBase))
		c.requeue(fr)
	}
}

func (c *conn) requeue(fr *frameRecord) {
	s := fr.s
	switch fr.kind {
	case frStream:
		if s.sendErr != nil || s.finAcked {
			return
		}
		if fr.open && !s.openAcked {
			s.needOpen = true
		}
		if end := fr.off + uint64(fr.n); fr.n > 0 && end > s.ackedOff {
			s.retx.add(max(fr.off, s.ackedOff), end)
		}
		if fr.fin {
			s.finSent = false
		}
		c.queueStream(s)
	case frReset:
		if !s.resetAcked {
			s.needReset = true
			c.queueCtrl(s)
		}
	case frStop:
		if !s.recvDone() {
			s.needStop = true
			c.queueCtrl(s)
		}
	case frMaxStreamData:
		if !s.removed && !s.finKnown && !s.readShut {
			s.needMSD = true
			c.queueCtrl(s)
		}
	case frMaxData:
		c.needMaxData = true
	case frMaxStreams:
		c.needMaxStreams = true
	case frAckFrequency:
		c.needAckFreq = true
	}
}

// popResolved forgets packets at the front of the history that are
// acknowledged or lost, with their frame records.
func (c *conn) popResolved() {
	for c.sent.len() > 0 && c.sent.front().resolved() {
		p := c.sent.popFront()
		c.sentBase++
		for i := uint32(0); i < p.nFrames; i++ {
			c.frames.popFront()
			c.framesBase++
		}
	}
	if c.sent.len() == 0 {
		// Nothing in flight: the connection may now sit idle for long, so
		// it gives the history's memory back (a flight's worth of records).
		c.sent.release()
		c.frames.release()
		c.releaseQueues()
	}
}

// onLossTimeout runs when the loss timer or the probe timeout fires
// (RFC 9002 §6.2): either declare losses by time, or send probes.
func (c *conn) onLossTimeout(now time.Duration) {
	if c.lossTime != 0 && now >= c.lossTime {
		c.detectLoss(now)
		c.popResolved()
		return
	}
	if c.elicitingInFlt == 0 {
		return
	}
	c.ptoCount++
	c.stats.probeTimeouts++
	c.probes = 2
	// Send the oldest outstanding data again in the probes, so a lost
	// tail is repaired by the probe itself rather than a round trip later.
	for i := 0; i < c.sent.len(); i++ {
		p := c.sent.at(i)
		if p.resolved() || p.flags&pktAckEliciting == 0 {
			continue
		}
		for j := uint64(0); j < uint64(p.nFrames); j++ {
			c.requeue(c.frames.at(int(p.firstFrame + j - c.framesBase)))
		}
		return
	}
}

// ptoDeadline is when the probe timeout fires (0: no ack-eliciting packet
// in flight).
func (c *conn) ptoDeadline() time.Duration {
	if c.elicitingInFlt == 0 {
		return 0
	}
	d := c.rtt.pto(c.peerMaxAckDelay) << min(c.ptoCount, 16)
	return c.lastElicitSent + min(d, 60*time.Second)
}
