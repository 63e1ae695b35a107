package community

import (
	"errors"
	"net/netip"

	"github.com/ipv8/go-ipv8/discovery"
	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/peer"
)

// What happens to packets the endpoint took from its port, in order: each
// is routed to its community, its framing parsed (prepare); the signatures
// of all of them are checked together (verify.go: outside any community
// lock, it is the expensive part and touches no state); then each, in
// arrival order, has its payload decoded and only then, under its
// community's lock, changes any state (finish). A packet that fails any
// check is counted and dropped without touching the peer tables.

// inPacket is one packet on its way in.
type inPacket struct {
	c      *Community
	pkt    []byte
	from   netip.AddrPort
	msgID  byte
	disc   bool         // a discovery message (IDs 231–255 that we speak)
	he     handlerEntry // the handler of an application message
	signed bool
	s      wire.Signed
	check  int // index of its signature check
}

// procState is the scratch space of one goroutine handling packets.
type procState struct {
	one    [1]inbound
	in     []inPacket
	checks []sigCheck
	v      batchVerifier
}

// process handles pkts (valid during the call), in order.
func (e *Endpoint) process(pkts []inbound, st *procState) {
	st.in = st.in[:0]
	e.mu.RLock()
	for _, p := range pkts {
		id, _, _ := wire.PeekHeader(p.pkt) // handle checked the length
		c := e.comms[id]
		if c == nil {
			e.unknownCommunity.Add(1)
			continue
		}
		st.in = append(st.in, inPacket{c: c, pkt: p.pkt, from: p.from, check: -1})
	}
	e.mu.RUnlock()
	// st.in is complete: the checks may point into it.
	st.checks = st.checks[:0]
	for i := range st.in {
		p := &st.in[i]
		if !p.c.prepare(p) || !p.signed {
			continue
		}
		p.check = len(st.checks)
		st.checks = append(st.checks, sigCheck{s: &p.s})
	}
	if len(st.checks) > 0 {
		st.v.verify(e.keys, st.checks)
	}
	for i := range st.in {
		p := &st.in[i]
		if p.c == nil {
			continue // dropped by prepare
		}
		var ck *sigCheck
		if p.check >= 0 {
			ck = &st.checks[p.check]
		}
		p.c.finish(p, ck)
	}
	clear(st.in)
	clear(st.checks)
}

// prepare counts p, finds what it is and parses its framing; a packet that
// is dropped gets p.c = nil.
func (c *Community) prepare(p *inPacket) bool {
	c.stats.received.Add(1)
	p.msgID = p.pkt[wire.HeaderSize-1]
	if signed, ok := wire.IsSignedDiscovery(p.msgID); ok {
		p.disc, p.signed = true, signed
	} else {
		if p.msgID >= wire.FirstReserved {
			// py-ipv8's deprecated Dispersy messages (235–255): ignored.
			c.stats.unknownMessage.Add(1)
			p.c = nil
			return false
		}
		c.hmu.RLock()
		if c.handlers != nil {
			p.he = c.handlers[p.msgID]
		}
		c.hmu.RUnlock()
		if p.he.h == nil {
			c.stats.unknownMessage.Add(1)
			p.c = nil
			return false
		}
		p.signed = p.he.signed
	}
	if p.signed {
		s, err := wire.ParseSigned(p.pkt)
		if err != nil {
			c.stats.malformed.Add(1)
			p.c = nil
			return false
		}
		p.s = s
	}
	return true
}

// finish handles p once its signature (if any) was checked: ck holds the
// outcome. Packets signed with our own key (our own broadcasts, or a
// reflection) are dropped.
func (c *Community) finish(p *inPacket, ck *sigCheck) {
	var (
		key *peer.PublicKey
		mid discovery.Mid
	)
	if p.signed {
		switch {
		case errors.Is(ck.err, wire.ErrBadSignature):
			c.stats.badSignature.Add(1)
			return
		case ck.err != nil || ck.key == nil:
			c.stats.malformed.Add(1)
			return
		}
		key = ck.key
		mid = discovery.Mid(key.Mid())
		if mid == c.mid {
			c.stats.fromSelf.Add(1)
			return
		}
	}
	if p.disc {
		c.receiveDiscovery(p, key, mid)
		return
	}
	m := Message{ID: p.msgID, From: p.from, Signed: p.signed}
	if p.signed {
		m.Key, m.Mid, m.GlobalTime, m.Payload = key, mid, p.s.GlobalTime, p.s.Payload
		c.mu.Lock()
		c.observeTime(p.s.GlobalTime)
		if q := c.net.byMid[mid]; q != nil && q.addr == p.from {
			q.lastSeen = c.clk.Now()
			q.pinged = timeZero
		}
		c.mu.Unlock()
	} else {
		u, err := wire.ParseUnsigned(p.pkt)
		if err != nil {
			c.stats.malformed.Add(1)
			return
		}
		m.GlobalTime, m.Payload = u.GlobalTime, u.Payload
	}
	c.stats.delivered.Add(1)
	p.he.h(&m)
}

// signedIn is a verified discovery message.
type signedIn struct {
	from       netip.AddrPort
	key        *peer.PublicKey
	mid        discovery.Mid
	globalTime uint64
	newStyle   bool
	advert     wire.Advert
}

func (c *Community) receiveDiscovery(p *inPacket, key *peer.PublicKey, mid discovery.Mid) {
	msgID, from := p.msgID, p.from
	newStyle := msgID == wire.MsgNewIntroductionRequest || msgID == wire.MsgNewIntroductionResponse ||
		msgID == wire.MsgNewPunctureRequest || msgID == wire.MsgNewPuncture
	if !p.signed {
		u, err := wire.ParseUnsigned(p.pkt)
		if err != nil {
			c.stats.malformed.Add(1)
			return
		}
		pr, err := wire.ParsePunctureRequest(u.Payload, newStyle)
		if err != nil {
			c.stats.malformed.Add(1)
			return
		}
		var b batch
		c.mu.Lock()
		if !c.closed {
			c.onPunctureRequest(from, pr, newStyle, &b)
		}
		c.mu.Unlock()
		c.flush(&b)
		return
	}
	s := &p.s
	in := signedIn{from: from, key: key, mid: mid, globalTime: s.GlobalTime, newStyle: newStyle}
	var (
		req  wire.IntroductionRequest
		resp wire.IntroductionResponse
		punc wire.Puncture
		err  error
	)
	switch msgID {
	case wire.MsgIntroductionRequest, wire.MsgNewIntroductionRequest:
		req, err = wire.ParseIntroductionRequest(s.Payload, newStyle)
		_, in.advert, _ = wire.SplitAdvert(req.Extra)
	case wire.MsgIntroductionResponse, wire.MsgNewIntroductionResponse:
		resp, err = wire.ParseIntroductionResponse(s.Payload, newStyle)
		_, in.advert, _ = wire.SplitAdvert(resp.Extra)
	case wire.MsgPuncture, wire.MsgNewPuncture:
		punc, err = wire.ParsePuncture(s.Payload, newStyle)
	}
	if err != nil {
		c.stats.malformed.Add(1)
		return
	}
	var b batch
	c.mu.Lock()
	if !c.closed {
		c.observeTime(s.GlobalTime)
		switch msgID {
		case wire.MsgIntroductionRequest, wire.MsgNewIntroductionRequest:
			c.onIntroductionRequest(&in, &req, &b)
		case wire.MsgIntroductionResponse, wire.MsgNewIntroductionResponse:
			c.onIntroductionResponse(&in, &resp, &b)
		case wire.MsgPuncture, wire.MsgNewPuncture:
			c.onPuncture(&in, &punc)
		}
	}
	c.mu.Unlock()
	c.flush(&b)
}
