package community

import (
	"errors"
	"net/netip"

	"github.com/ipv8/go-ipv8/discovery"
	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/peer"
)

// What happens to a packet the endpoint routed here, in order: the framing
// is parsed, the signature checked (outside the lock: it is the expensive
// part and touches no state), the payload decoded, and only then, under the
// lock, does the packet change any state. A packet that fails any check is
// counted and dropped without touching the peer tables.

func (c *Community) receive(pkt []byte, from netip.AddrPort) {
	c.stats.received.Add(1)
	msgID := pkt[wire.HeaderSize-1]
	if signed, ok := wire.IsSignedDiscovery(msgID); ok {
		c.receiveDiscovery(pkt, from, msgID, signed)
		return
	}
	if msgID >= wire.FirstReserved {
		// py-ipv8's deprecated Dispersy messages (235–255): ignored.
		c.stats.unknownMessage.Add(1)
		return
	}
	var he handlerEntry
	c.hmu.RLock()
	if c.handlers != nil {
		he = c.handlers[msgID]
	}
	c.hmu.RUnlock()
	if he.h == nil {
		c.stats.unknownMessage.Add(1)
		return
	}
	m := Message{ID: msgID, From: from, Signed: he.signed}
	if he.signed {
		s, key, mid, ok := c.verifySigned(pkt)
		if !ok {
			return
		}
		m.Key, m.Mid, m.GlobalTime, m.Payload = key, mid, s.GlobalTime, s.Payload
		c.mu.Lock()
		c.observeTime(s.GlobalTime)
		if p := c.net.byMid[mid]; p != nil && p.addr == from {
			p.lastSeen = c.clk.Now()
			p.pinged = timeZero
		}
		c.mu.Unlock()
	} else {
		u, err := wire.ParseUnsigned(pkt)
		if err != nil {
			c.stats.malformed.Add(1)
			return
		}
		m.GlobalTime, m.Payload = u.GlobalTime, u.Payload
	}
	c.stats.delivered.Add(1)
	he.h(&m)
}

// verifySigned parses a signed packet and checks its signature. Packets
// signed with our own key (our own broadcasts, or a reflection) are dropped.
func (c *Community) verifySigned(pkt []byte) (wire.Signed, *peer.PublicKey, discovery.Mid, bool) {
	s, err := wire.ParseSigned(pkt)
	if err != nil {
		c.stats.malformed.Add(1)
		return s, nil, discovery.Mid{}, false
	}
	key, err := c.ep.keys.Verify(&s)
	if errors.Is(err, wire.ErrBadSignature) {
		c.stats.badSignature.Add(1)
		return s, nil, discovery.Mid{}, false
	}
	if err != nil {
		c.stats.malformed.Add(1)
		return s, nil, discovery.Mid{}, false
	}
	mid := discovery.Mid(key.Mid())
	if mid == c.mid {
		c.stats.fromSelf.Add(1)
		return s, nil, discovery.Mid{}, false
	}
	return s, key, mid, true
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

func (c *Community) receiveDiscovery(pkt []byte, from netip.AddrPort, msgID byte, signed bool) {
	newStyle := msgID == wire.MsgNewIntroductionRequest || msgID == wire.MsgNewIntroductionResponse ||
		msgID == wire.MsgNewPunctureRequest || msgID == wire.MsgNewPuncture
	if !signed {
		u, err := wire.ParseUnsigned(pkt)
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
	s, key, mid, ok := c.verifySigned(pkt)
	if !ok {
		return
	}
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
