package noise

import "sync/atomic"

// Stats counts what a Transport did, including every packet it dropped and
// why (drops are silent on the wire).
type Stats struct {
	HandshakesInitiated uint64 // handshakes this side started (new sessions and rekeys)
	HandshakesCompleted uint64 // handshakes that produced keys (either side)
	HandshakesFailed    uint64 // initiator handshakes that gave up or were refused
	Retransmissions     uint64 // handshake messages and challenges sent again
	Rekeys              uint64 // keypairs that replaced a session's keys
	CookieRepliesSent   uint64
	CookiesReceived     uint64
	RefusalsSent        uint64 // IK initiations for a static key we do not have
	Roams               uint64 // sessions moved to a new address
	SimultaneousOpens   uint64 // crossing handshakes resolved into one session
	EarlySent           uint64 // 0-RTT packets sent behind our initiations
	EarlyReceived       uint64 // 0-RTT packets opened and delivered
	Resumptions         uint64 // resumption handshakes completed (either side)
	ResumeFallbacks     uint64 // our resumptions refused or unanswered, redone as IK

	DroppedMalformed     uint64 // not a well-formed packet
	DroppedMAC1          uint64 // initiation with a bad mac1 (not for us, or junk)
	DroppedHandshake     uint64 // Noise or identity verification failed
	DroppedStale         uint64 // initiation older than one already accepted (replay) or crossing and losing
	DroppedLoad          uint64 // initiation dropped because half-open state is full
	DroppedUnknownIndex  uint64 // data or response for an index we do not have
	DroppedReplay        uint64 // duplicate, replayed or too-old counter
	DroppedAuth          uint64 // data packet that failed authentication (tampered, wrong key)
	DroppedExpired       uint64 // data under keys past RejectAfterTime/Messages
	DroppedAmplification uint64 // packets not sent: an unvalidated address's 3× budget was spent
	DroppedQueueFull     uint64 // payloads dropped: the pending queue was full
	DroppedEarlyData     uint64 // early data too old to deliver

	PacketsSent     uint64
	PacketsReceived uint64 // authenticated data packets
	BytesSent       uint64 // UDP payload bytes, every packet type
	BytesReceived   uint64
}

type counters struct {
	handshakesInitiated, handshakesCompleted, handshakesFailed    atomic.Uint64
	retransmissions, rekeys, cookieRepliesSent, cookiesReceived   atomic.Uint64
	refusalsSent, roams, simultaneousOpens                        atomic.Uint64
	earlySent, earlyReceived, resumptions, resumeFallbacks        atomic.Uint64
	droppedMalformed, droppedMAC1, droppedHandshake, droppedStale atomic.Uint64
	droppedLoad, droppedUnknownIndex, droppedReplay, droppedAuth  atomic.Uint64
	droppedExpired, droppedAmplification, droppedQueueFull        atomic.Uint64
	droppedEarlyData                                              atomic.Uint64
	packetsSent, packetsReceived, bytesSent, bytesReceived        atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		HandshakesInitiated:  c.handshakesInitiated.Load(),
		HandshakesCompleted:  c.handshakesCompleted.Load(),
		HandshakesFailed:     c.handshakesFailed.Load(),
		Retransmissions:      c.retransmissions.Load(),
		Rekeys:               c.rekeys.Load(),
		CookieRepliesSent:    c.cookieRepliesSent.Load(),
		CookiesReceived:      c.cookiesReceived.Load(),
		RefusalsSent:         c.refusalsSent.Load(),
		Roams:                c.roams.Load(),
		SimultaneousOpens:    c.simultaneousOpens.Load(),
		EarlySent:            c.earlySent.Load(),
		EarlyReceived:        c.earlyReceived.Load(),
		Resumptions:          c.resumptions.Load(),
		ResumeFallbacks:      c.resumeFallbacks.Load(),
		DroppedMalformed:     c.droppedMalformed.Load(),
		DroppedMAC1:          c.droppedMAC1.Load(),
		DroppedHandshake:     c.droppedHandshake.Load(),
		DroppedStale:         c.droppedStale.Load(),
		DroppedLoad:          c.droppedLoad.Load(),
		DroppedUnknownIndex:  c.droppedUnknownIndex.Load(),
		DroppedReplay:        c.droppedReplay.Load(),
		DroppedAuth:          c.droppedAuth.Load(),
		DroppedExpired:       c.droppedExpired.Load(),
		DroppedAmplification: c.droppedAmplification.Load(),
		DroppedQueueFull:     c.droppedQueueFull.Load(),
		DroppedEarlyData:     c.droppedEarlyData.Load(),
		PacketsSent:          c.packetsSent.Load(),
		PacketsReceived:      c.packetsReceived.Load(),
		BytesSent:            c.bytesSent.Load(),
		BytesReceived:        c.bytesReceived.Load(),
	}
}
