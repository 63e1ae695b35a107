package community

import (
	"net/netip"
	"time"

	"github.com/ipv8/go-ipv8/discovery"
	"github.com/ipv8/go-ipv8/discovery/community/wire"
)

// The discovery protocol, as py-ipv8 3.2 runs it:
//
//	walker A ── introduction-request ──► responder R
//	A ◄── introduction-response (introduces C: C's LAN and WAN address) ── R
//	                                   R ── puncture-request (A's addresses) ──► C
//	A ◄────────────────── puncture ─────────────────────────────────────────── C
//
// C's puncture opens C's NAT towards A, so that A's next walk, to C,
// passes it. Every handler here runs under c.mu with a verified sender.

func (c *Community) onIntroductionRequest(in *signedIn, req *wire.IntroductionRequest, b *batch) {
	now := c.clk.Now()
	if c.cfg.MaxPeers >= 0 && c.net.count() > c.cfg.MaxPeers {
		// py-ipv8 stays silent when full, so the walker's churn moves on.
		c.stats.peerLimit.Add(1)
		return
	}
	c.stats.requestsIn.Add(1)
	peerNewStyle := in.newStyle || req.SupportsNewStyle
	var p *peerEntry
	if !c.net.blacklist[in.from] {
		p = c.verified(in, now, b)
		p.lan = unmap(req.SourceLAN)
		p.newStyle = p.newStyle || peerNewStyle
	}

	intro := c.net.random(c.rng, p, !peerNewStyle)
	if intro != nil && intro.addr == in.from {
		intro = nil
	}
	resp := wire.IntroductionResponse{
		Destination:      in.from,
		SourceLAN:        c.lan,
		SourceWAN:        c.myWAN(),
		SupportsNewStyle: true,
		PeerLimitReached: c.cfg.MaxPeers >= 0 && c.cfg.MaxPeers <= c.net.count(),
		Identifier:       req.Identifier,
		Extra:            c.extra,
	}
	if intro != nil {
		if c.isLANAddr(intro.addr.Addr()) {
			// C sits in our LAN: the requester reaches it at its LAN
			// address if it is in the LAN too, else through our NAT.
			resp.LANIntroduction = intro.addr
			resp.WANIntroduction = netip.AddrPortFrom(c.myWAN().Addr(), intro.addr.Port())
		} else {
			resp.LANIntroduction = intro.lan
			resp.WANIntroduction = intro.addr
		}
		resp.IntroSupportsNewStyle = intro.newStyle
	}
	gt := c.claimTime()
	style := peerNewStyle || !allIPv4(resp.Destination, resp.SourceLAN, resp.SourceWAN, resp.LANIntroduction, resp.WANIntroduction)
	msgID := byte(wire.MsgIntroductionResponse)
	if style {
		msgID = wire.MsgNewIntroductionResponse
	}
	pkt := c.signer.AppendSignedHead(make([]byte, 0, 256), c.id, msgID, gt)
	pkt, err := resp.Append(pkt, style)
	if err != nil {
		c.log.Debug("introduction-response not encodable", "err", err)
		return
	}
	b.send(in.from, c.signer.Seal(pkt, 0))

	if intro != nil {
		pr := wire.PunctureRequest{LANWalker: unmap(req.SourceLAN), WANWalker: in.from, Identifier: req.Identifier}
		c.sendPunctureRequest(intro, &pr, b)
	}
}

func (c *Community) sendPunctureRequest(to *peerEntry, pr *wire.PunctureRequest, b *batch) {
	style := to.newStyle || !allIPv4(to.addr, pr.LANWalker, pr.WANWalker)
	msgID := byte(wire.MsgPunctureRequest)
	if style {
		msgID = wire.MsgNewPunctureRequest
	}
	pkt := wire.AppendUnsignedHead(make([]byte, 0, 80), c.id, msgID, c.claimTime())
	pkt, err := pr.Append(pkt, style)
	if err != nil {
		return
	}
	c.stats.punctureReqSent.Add(1)
	b.send(to.addr, pkt)
}

func (c *Community) onIntroductionResponse(in *signedIn, resp *wire.IntroductionResponse, b *batch) {
	now := c.clk.Now()
	c.stats.responsesIn.Add(1)
	c.wan.add(in.mid, resp.Destination)
	c.walker.answered(in.from)

	var rtt time.Duration
	pk := pendingKey{in.from, resp.Identifier}
	if sent, ok := c.pending[pk]; ok {
		rtt = now.Sub(sent)
		delete(c.pending, pk)
	}
	if c.net.blacklist[in.from] {
		c.net.noteIntroducer(in.mid, in.key, in.from, now)
	} else {
		p := c.verified(in, now, b)
		p.lan = unmap(resp.SourceLAN)
		p.newStyle = p.newStyle || in.newStyle || resp.SupportsNewStyle
		if rtt > 0 {
			if p.rtt == 0 {
				p.rtt = rtt
			} else {
				p.rtt = (7*p.rtt + rtt) / 8
			}
		}
	}

	wan, lan := unmap(resp.WANIntroduction), unmap(resp.LANIntroduction)
	myWAN := c.myWAN()
	switch {
	case wire.IsZeroAddr(wan):
	case wan.Addr() != myWAN.Addr():
		// Outside our NAT. py-ipv8 also tries the LAN address; go-ipv8
		// only when it lies in one of our own LAN networks.
		if !wire.IsZeroAddr(lan) && lan != wan && c.isLANAddr(lan.Addr()) {
			c.discover(lan, in, resp.IntroSupportsNewStyle, now)
		}
		c.discover(wan, in, resp.IntroSupportsNewStyle, now)
	case !wire.IsZeroAddr(lan):
		// Behind the same NAT as we are: only the LAN address works
		// without hairpinning.
		c.discover(lan, in, resp.IntroSupportsNewStyle, now)
	default:
		c.discover(wan, in, resp.IntroSupportsNewStyle, now)
		c.discover(netip.AddrPortFrom(c.lan.Addr(), wan.Port()), in, resp.IntroSupportsNewStyle, now)
	}
}

func (c *Community) discover(addr netip.AddrPort, in *signedIn, newStyle bool, now time.Time) {
	if addr == c.lan || addr == c.myWAN() || addr == in.from || !addr.IsValid() || addr.Port() == 0 {
		return
	}
	c.net.discover(addr, in.mid, newStyle, now)
}

func (c *Community) onPunctureRequest(from netip.AddrPort, pr wire.PunctureRequest, newStyle bool, b *batch) {
	c.stats.punctureReqIn.Add(1)
	now := c.clk.Now()
	// Puncture requests are unsigned, so anyone could make us send signed
	// packets anywhere: go-ipv8 answers only the peers it knows (the
	// responder that introduced us is one) and at a bounded rate.
	known := c.net.byAddr[from] != nil || c.net.blacklist[from]
	if c.cfg.DisablePuncture || !known || !c.punctures.allow(now) {
		c.stats.punctureIgnored.Add(1)
		return
	}
	myWAN := c.myWAN()
	target := unmap(pr.WANWalker)
	if target.Addr() == myWAN.Addr() {
		target = unmap(pr.LANWalker) // the walker is behind our NAT
	}
	if wire.IsZeroAddr(target) || target == c.lan || target == myWAN {
		return
	}
	p := wire.Puncture{SourceLAN: c.lan, SourceWAN: myWAN, Identifier: pr.Identifier}
	style := newStyle || !allIPv4(target, p.SourceLAN, p.SourceWAN)
	msgID := byte(wire.MsgPuncture)
	if style {
		msgID = wire.MsgNewPuncture
	}
	pkt := c.signer.AppendSignedHead(make([]byte, 0, 192), c.id, msgID, c.claimTime())
	pkt, err := p.Append(pkt, style)
	if err != nil {
		return
	}
	c.stats.puncturesSent.Add(1)
	b.send(target, c.signer.Seal(pkt, 0))
}

func (c *Community) onPuncture(in *signedIn, _ *wire.Puncture) {
	c.stats.puncturesIn.Add(1)
	if p := c.net.byMid[in.mid]; p != nil && p.addr == in.from {
		p.lastSeen = c.clk.Now()
		p.pinged = timeZero
	}
}

// verified adds or refreshes the sender of a verified introduction message
// in the peer table.
func (c *Community) verified(in *signedIn, now time.Time, b *batch) *peerEntry {
	p, added, displaced := c.net.verify(in.key, in.mid, in.from, now)
	if in.advert.Flags != 0 {
		p.noise = in.advert.Noise()
	}
	if displaced != nil {
		c.emit(b, discovery.PeerRemoved, displaced)
	}
	if added {
		c.emit(b, discovery.PeerAdded, p)
	}
	return p
}

func allIPv4(addrs ...netip.AddrPort) bool {
	for _, a := range addrs {
		if a.IsValid() && !a.Addr().Unmap().Is4() {
			return false
		}
	}
	return true
}

// isLANAddr reports whether a is a host in our LAN: inside the configured
// LAN prefixes, or (by default) inside the /24 around our LAN address and
// in a private range.
func (c *Community) isLANAddr(a netip.Addr) bool {
	if !c.inLAN(a) {
		return false
	}
	return len(c.cfg.LANPrefixes) > 0 || isPrivate(a)
}
