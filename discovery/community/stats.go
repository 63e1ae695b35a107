package community

import "sync/atomic"

// Stats counts what a community received and did.
type Stats struct {
	Received        uint64 // packets routed to the community
	Malformed       uint64 // dropped: did not decode
	BadSignature    uint64 // dropped: signature did not verify
	UnknownMessage  uint64 // dropped: no handler for the message ID
	FromSelf        uint64 // dropped: signed with our own key
	PeerLimit       uint64 // introduction requests ignored above MaxPeers
	RequestsSent    uint64 // introduction requests sent
	RequestsIn      uint64 // introduction requests answered
	ResponsesIn     uint64 // introduction responses received
	PunctureReqSent uint64 // puncture requests sent to introduced peers
	PunctureReqIn   uint64 // puncture requests received
	PunctureIgnored uint64 // puncture requests refused (unknown sender, rate limit)
	PuncturesSent   uint64
	PuncturesIn     uint64
	WalkTimeouts    uint64 // walks to an introduced address that got no answer
	Dropped         uint64 // verified peers dropped by churn
	Delivered       uint64 // application messages handed to handlers
}

type counters struct {
	received, malformed, badSignature, unknownMessage, fromSelf, peerLimit        atomic.Uint64
	requestsSent, requestsIn, responsesIn, punctureReqSent, punctureReqIn         atomic.Uint64
	punctureIgnored, puncturesSent, puncturesIn, walkTimeouts, dropped, delivered atomic.Uint64
}

// Stats returns the community's counters.
func (c *Community) Stats() Stats {
	s := &c.stats
	return Stats{
		Received: s.received.Load(), Malformed: s.malformed.Load(), BadSignature: s.badSignature.Load(),
		UnknownMessage: s.unknownMessage.Load(), FromSelf: s.fromSelf.Load(), PeerLimit: s.peerLimit.Load(),
		RequestsSent: s.requestsSent.Load(), RequestsIn: s.requestsIn.Load(), ResponsesIn: s.responsesIn.Load(),
		PunctureReqSent: s.punctureReqSent.Load(), PunctureReqIn: s.punctureReqIn.Load(),
		PunctureIgnored: s.punctureIgnored.Load(), PuncturesSent: s.puncturesSent.Load(),
		PuncturesIn: s.puncturesIn.Load(), WalkTimeouts: s.walkTimeouts.Load(), Dropped: s.dropped.Load(),
		Delivered: s.delivered.Load(),
	}
}
