package community

import (
	"net/netip"
	"time"

	"github.com/ipv8/go-ipv8/discovery"
	"github.com/ipv8/go-ipv8/discovery/community/wire"
)

var timeZero time.Time

// batch collects what an event produced under the lock (packets to send,
// peer events to report), so that flush does the I/O and calls the
// subscribers after the lock is released.
type batch struct {
	pkts   []outPkt
	events []discovery.Event
	subs   []func(discovery.Event)
}

type outPkt struct {
	to  netip.AddrPort
	pkt []byte
}

func (b *batch) send(to netip.AddrPort, pkt []byte) { b.pkts = append(b.pkts, outPkt{to, pkt}) }

func (c *Community) emit(b *batch, kind discovery.EventKind, p *peerEntry) {
	if len(c.subs) == 0 {
		return
	}
	if b.subs == nil {
		for _, f := range c.subs {
			b.subs = append(b.subs, f)
		}
	}
	b.events = append(b.events, discovery.Event{Kind: kind, Peer: p.info()})
}

func (c *Community) flush(b *batch) {
	for _, o := range b.pkts {
		if err := c.ep.send(o.pkt, o.to); err != nil {
			c.log.Debug("send failed", "to", o.to, "err", err)
		}
	}
	for _, e := range b.events {
		for _, f := range b.subs {
			f(e)
		}
	}
}

// introRequest sends an introduction request to addr and remembers it, to
// measure the RTT when the answer comes.
func (c *Community) introRequest(to netip.AddrPort, newStyle bool, now time.Time, b *batch) {
	gt := c.claimTime()
	req := wire.IntroductionRequest{
		Destination:      to,
		SourceLAN:        c.lan,
		SourceWAN:        c.myWAN(),
		SupportsNewStyle: true,
		Advice:           true,
		Identifier:       uint16(gt),
		Extra:            c.extra,
	}
	style := newStyle || !allIPv4(to, req.SourceLAN, req.SourceWAN)
	msgID := byte(wire.MsgIntroductionRequest)
	if style {
		msgID = wire.MsgNewIntroductionRequest
	}
	pkt := c.signer.AppendSignedHead(make([]byte, 0, 224), c.id, msgID, gt)
	pkt, err := req.Append(pkt, style)
	if err != nil {
		c.log.Debug("introduction-request not encodable", "to", to, "err", err)
		return
	}
	c.pending[pendingKey{to, req.Identifier}] = now
	c.stats.requestsSent.Add(1)
	b.send(to, c.signer.Seal(pkt, 0))
}

// walkTo sends an introduction request to an address (walkable, bootstrap
// or LAN broadcast).
func (c *Community) walkTo(addr netip.AddrPort, now time.Time, b *batch) {
	newStyle := false
	if w := c.net.walk[addr]; w != nil {
		newStyle = w.newStyle
	}
	c.introRequest(addr, newStyle, now, b)
}

// newIntroduction asks a verified peer (from, or a random one) for an
// introduction; with no peers it bootstraps. Now and then (5 %) it asks a
// bootstrap server instead, to mend a partitioned network (py-ipv8's
// keep-alive).
func (c *Community) newIntroduction(from *peerEntry, now time.Time, b *batch) {
	if from == nil {
		if c.net.count() == 0 {
			c.bootstrap(now, b)
			return
		}
		if len(c.cfg.Bootstrap) > 0 && c.rng.IntN(100) < 5 {
			c.walkTo(unmap(c.cfg.Bootstrap[c.rng.IntN(len(c.cfg.Bootstrap))]), now, b)
			return
		}
		from = c.net.random(c.rng, nil, false)
	}
	c.introRequest(from.addr, from.newStyle, now, b)
}

// bootstrap walks to every bootstrap address, at most once per
// BootstrapInterval.
func (c *Community) bootstrap(now time.Time, b *batch) {
	if !c.lastBoot.IsZero() && now.Sub(c.lastBoot) < c.cfg.BootstrapInterval {
		return
	}
	c.lastBoot = now
	for _, a := range c.cfg.Bootstrap {
		c.walkTo(unmap(a), now, b)
	}
}
