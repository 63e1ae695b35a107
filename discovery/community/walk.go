package community

import (
	"net/netip"
	"time"

	"github.com/ipv8/go-ipv8/discovery"
)

// Strategy chooses whom a community asks for introductions. Each community
// makes its own walker state from it.
type Strategy interface {
	newWalker() walker
}

type walker interface {
	// step runs every walk interval while the community has fewer than
	// TargetPeers verified peers.
	step(c *Community, now time.Time, b *batch)
	// answered tells the walker that addr sent an introduction response.
	answered(addr netip.AddrPort)
}

// RandomWalk is py-ipv8's default strategy: walk to a random introduced
// address, keeping at most WindowSize walks unanswered; an address that
// does not answer within the walk timeout is forgotten. With probability
// ResetChance/256 (or when nothing is walkable) ask a random verified peer
// for an introduction instead, so a walk does not get stuck in a corner.
type RandomWalk struct {
	WindowSize  int // unanswered walks at a time (5)
	ResetChance int // out of 256 (50)
}

func (r RandomWalk) newWalker() walker {
	if r.WindowSize <= 0 {
		r.WindowSize = 5
	}
	if r.ResetChance <= 0 {
		r.ResetChance = 50
	}
	return &randomWalker{cfg: r, outstanding: make(map[netip.AddrPort]time.Time)}
}

type randomWalker struct {
	cfg         RandomWalk
	outstanding map[netip.AddrPort]time.Time
}

func (w *randomWalker) answered(addr netip.AddrPort) { delete(w.outstanding, addr) }

func (w *randomWalker) step(c *Community, now time.Time, b *batch) {
	for addr, t := range w.outstanding {
		if now.Sub(t) > c.cfg.WalkTimeout {
			delete(w.outstanding, addr)
			if c.net.byAddr[addr] == nil {
				c.net.removeWalkAddr(addr)
				c.stats.walkTimeouts.Add(1)
			}
		}
	}
	if len(w.outstanding) >= w.cfg.WindowSize {
		return
	}
	if c.rng.IntN(256) >= w.cfg.ResetChance {
		if addr, ok := w.pick(c); ok {
			w.outstanding[addr] = now
			c.walkTo(addr, now, b)
			return
		}
	}
	c.newIntroduction(nil, now, b)
}

// pick returns a random walkable address that is not being walked to.
func (w *randomWalker) pick(c *Community) (netip.AddrPort, bool) {
	list := c.net.walkList
	if len(list) <= len(w.outstanding) {
		// Possibly all outstanding: check exactly.
		for _, e := range list {
			if _, busy := w.outstanding[e.addr]; !busy {
				return e.addr, true
			}
		}
		return netip.AddrPort{}, false
	}
	for range 16 {
		e := list[c.rng.IntN(len(list))]
		if _, busy := w.outstanding[e.addr]; !busy {
			return e.addr, true
		}
	}
	for _, e := range list {
		if _, busy := w.outstanding[e.addr]; !busy {
			return e.addr, true
		}
	}
	return netip.AddrPort{}, false
}

// EdgeWalk is py-ipv8's depth-first strategy: from each of NeighborhoodSize
// verified roots, grow an edge by asking the last peer of the edge for an
// introduction and walking to whom it introduced, up to EdgeLength peers;
// an edge that does not grow within EdgeTimeout is finished.
type EdgeWalk struct {
	EdgeLength       int           // peers per edge (4)
	NeighborhoodSize int           // roots (6)
	EdgeTimeout      time.Duration // (3 s)
}

func (e EdgeWalk) newWalker() walker {
	if e.EdgeLength <= 0 {
		e.EdgeLength = 4
	}
	if e.NeighborhoodSize <= 0 {
		e.NeighborhoodSize = 6
	}
	if e.EdgeTimeout <= 0 {
		e.EdgeTimeout = 3 * time.Second
	}
	return &edgeWalker{cfg: e, building: make(map[discovery.Mid]*edge), walked: make(map[netip.AddrPort]time.Time)}
}

type edge struct {
	path []discovery.Mid
	last time.Time
}

// maxCompleteEdges bounds the finished edges an EdgeWalk remembers.
const maxCompleteEdges = 32

type edgeWalker struct {
	cfg          EdgeWalk
	neighborhood []discovery.Mid
	building     map[discovery.Mid]*edge
	complete     [][]discovery.Mid
	walked       map[netip.AddrPort]time.Time // recent walks, not repeated within the timeout
}

func (w *edgeWalker) answered(netip.AddrPort) {}

func (w *edgeWalker) walkOnce(c *Community, addr netip.AddrPort, now time.Time, b *batch) {
	if t, ok := w.walked[addr]; ok && now.Sub(t) < c.cfg.WalkTimeout {
		return
	}
	w.walked[addr] = now
	c.walkTo(addr, now, b)
}

func (w *edgeWalker) step(c *Community, now time.Time, b *batch) {
	for addr, t := range w.walked {
		if now.Sub(t) >= c.cfg.WalkTimeout {
			delete(w.walked, addr)
		}
	}
	// Roots that were dropped leave the neighbourhood.
	kept := w.neighborhood[:0]
	for _, m := range w.neighborhood {
		if c.net.byMid[m] != nil {
			kept = append(kept, m)
		} else {
			delete(w.building, m)
		}
	}
	w.neighborhood = kept

	if len(w.neighborhood) < w.cfg.NeighborhoodSize {
		// Wait for the immediate neighbourhood to be discovered.
		w.neighborhood = w.neighborhood[:0]
		for _, p := range c.net.list {
			if len(w.neighborhood) == w.cfg.NeighborhoodSize {
				break
			}
			w.neighborhood = append(w.neighborhood, p.mid)
		}
		if len(c.net.walkList) == 0 {
			// Nothing to walk to: ask a peer for an introduction (or
			// bootstrap when peerless). py-ipv8 only bootstraps here and
			// stalls until its bootstrap interval passes.
			c.newIntroduction(nil, now, b)
		}
		for i, e := range c.net.walkList {
			if i == w.cfg.NeighborhoodSize {
				break
			}
			w.walkOnce(c, e.addr, now, b)
		}
		return
	}
	for _, root := range w.neighborhood {
		if _, busy := w.building[root]; !busy {
			w.building[root] = &edge{path: []discovery.Mid{root}, last: now}
			c.newIntroduction(c.net.byMid[root], now, b)
			return
		}
	}
	for root, e := range w.building {
		lastMid := e.path[len(e.path)-1]
		walkable, verified := c.net.introductionsFrom(lastMid)
		for _, addr := range walkable {
			w.walkOnce(c, addr, now, b)
		}
		var candidates []*peerEntry
		for _, p := range verified {
			if !contains(e.path, p.mid) {
				candidates = append(candidates, p)
			}
		}
		switch {
		case len(candidates) > 0:
			next := candidates[c.rng.IntN(len(candidates))]
			e.path = append(e.path, next.mid)
			e.last = now
			if len(e.path) >= w.cfg.EdgeLength {
				w.finish(root, e)
			} else {
				c.introRequest(next.addr, next.newStyle, now, b)
			}
		case now.Sub(e.last) > w.cfg.EdgeTimeout:
			w.finish(root, e)
		}
	}
}

func (w *edgeWalker) finish(root discovery.Mid, e *edge) {
	delete(w.building, root)
	if len(e.path) > 1 {
		if len(w.complete) == maxCompleteEdges {
			w.complete = append(w.complete[:0], w.complete[1:]...)
		}
		w.complete = append(w.complete, e.path)
	}
}

func contains(path []discovery.Mid, m discovery.Mid) bool {
	for _, x := range path {
		if x == m {
			return true
		}
	}
	return false
}
