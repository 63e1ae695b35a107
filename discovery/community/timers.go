package community

import "time"

// tick is the community's one timer: every WalkInterval it forgets
// unanswered requests, runs churn, takes a walk step while below
// TargetPeers, and sends the periodic LAN discovery request.
func (c *Community) tick() {
	var b batch
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	now := c.clk.Now()
	c.expirePending(now)
	if !c.cfg.Churn.Disable {
		c.churnStep(now, &b)
	}
	if !c.cfg.AnswerOnly {
		if c.net.count() < c.cfg.TargetPeers {
			c.walker.step(c, now, &b)
		}
		if len(c.cfg.LANDiscovery) > 0 && (c.lastLAN.IsZero() || now.Sub(c.lastLAN) >= c.cfg.LANInterval) {
			c.lastLAN = now
			for _, a := range c.cfg.LANDiscovery {
				c.introRequest(unmap(a), false, now, &b)
			}
		}
	}
	c.timer = c.clk.AfterFunc(c.cfg.WalkInterval, c.tick)
	c.mu.Unlock()
	c.flush(&b)
}

func (c *Community) expirePending(now time.Time) {
	for k, sent := range c.pending {
		if now.Sub(sent) > c.cfg.WalkTimeout {
			delete(c.pending, k)
		}
	}
}
