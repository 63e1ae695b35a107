package community

import (
	"time"

	"github.com/ipv8/go-ipv8/discovery"
)

// churnStep is py-ipv8's RandomChurn: look at a few random verified peers;
// ping (with an introduction request) those silent for InactiveAfter, at
// most every PingInterval; drop those silent for DropAfter that were
// pinged.
func (c *Community) churnStep(now time.Time, b *batch) {
	n := min(c.net.count(), c.cfg.Churn.SampleSize)
	for range n {
		if c.net.count() == 0 {
			return
		}
		p := c.net.list[c.rng.IntN(c.net.count())]
		silent := now.Sub(p.lastSeen)
		switch {
		case silent > c.cfg.Churn.DropAfter && !p.pinged.IsZero():
			c.net.removeEntry(p)
			c.net.noteIntroducer(p.mid, p.key, p.addr, p.lastSeen)
			c.stats.dropped.Add(1)
			c.emit(b, discovery.PeerRemoved, p)
		case silent > c.cfg.Churn.InactiveAfter:
			if !p.pinged.IsZero() && now.Sub(p.pinged) > c.cfg.Churn.PingInterval {
				p.pinged = timeZero
			}
			if p.pinged.IsZero() {
				p.pinged = now
				c.introRequest(p.addr, p.newStyle, now, b)
			}
		}
	}
}
