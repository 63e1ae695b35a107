package community

import (
	"github.com/ipv8/go-ipv8/discovery"
	"github.com/ipv8/go-ipv8/peer"
)

// Graph returns a snapshot of the neighbourhood: this host, its verified
// peers, the introducers it remembers (trackers, dropped peers), and an
// edge for every introduction that led to a verified peer.
func (c *Community) Graph() discovery.Graph {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := discovery.Graph{Self: c.mid, Taken: c.clk.Now()}
	g.Nodes = append(g.Nodes, discovery.Node{Mid: c.mid, ID: c.cfg.Key.ID(), Addr: c.myWAN(), Verified: false,
		Noise: c.cfg.Advertise != nil && c.cfg.Advertise.Noise(), LastSeen: g.Taken})
	for _, p := range c.net.list {
		g.Nodes = append(g.Nodes, discovery.Node{Mid: p.mid, ID: peer.IDFromPublicKey(p.key), Addr: p.addr,
			Verified: true, Noise: p.noise, LastSeen: p.lastSeen, RTT: p.rtt})
		if !p.introducedBy.IsZero() {
			g.Edges = append(g.Edges, discovery.Edge{From: p.introducedBy, To: p.mid, At: p.firstSeen})
		}
	}
	for _, in := range c.net.introducers {
		n := discovery.Node{Mid: in.mid, Addr: in.addr, LastSeen: in.lastSeen}
		if in.key != nil {
			n.ID = peer.IDFromPublicKey(in.key)
		}
		g.Nodes = append(g.Nodes, n)
	}
	return g
}
