package community

import (
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/ipv8/go-ipv8/discovery"
	"github.com/ipv8/go-ipv8/peer"
)

// The peer tables of one community: verified peers (a signed introduction
// request or response came from them), walkable addresses (introduced to
// us, not verified yet) and who introduced whom. All access is under the
// community's lock.

// peerEntry is a verified peer.
type peerEntry struct {
	key          *peer.PublicKey
	mid          discovery.Mid
	addr         netip.AddrPort // where its packets come from
	lan          netip.AddrPort // the LAN address it reported
	introducedBy discovery.Mid
	firstSeen    time.Time
	lastSeen     time.Time
	pinged       time.Time // last churn ping; zero when not pinged
	rtt          time.Duration
	newStyle     bool // speaks the IPv6-capable message forms
	noise        bool // advertised go-ipv8 Noise sessions
	idx          int  // position in network.list
}

// walkEntry is an introduced address not verified yet.
type walkEntry struct {
	addr         netip.AddrPort
	introducedBy discovery.Mid
	at           time.Time
	newStyle     bool
	idx          int
}

// introducer remembers a peer that introduced others to us, for the graph,
// when it is not (or no longer) verified: trackers, dropped peers.
type introducer struct {
	mid      discovery.Mid
	key      *peer.PublicKey
	addr     netip.AddrPort
	lastSeen time.Time
}

const maxIntroducers = 64

type network struct {
	byMid  map[discovery.Mid]*peerEntry
	byAddr map[netip.AddrPort]*peerEntry
	list   []*peerEntry // for uniform random choice

	walk     map[netip.AddrPort]*walkEntry
	walkList []*walkEntry
	maxWalk  int

	introducers map[discovery.Mid]*introducer

	blacklist map[netip.AddrPort]bool // bootstrap addresses
}

func newNetwork(maxWalk int) *network {
	return &network{
		byMid:       make(map[discovery.Mid]*peerEntry),
		byAddr:      make(map[netip.AddrPort]*peerEntry),
		walk:        make(map[netip.AddrPort]*walkEntry),
		maxWalk:     maxWalk,
		introducers: make(map[discovery.Mid]*introducer),
		blacklist:   make(map[netip.AddrPort]bool),
	}
}

func (n *network) count() int { return len(n.list) }

func (n *network) random(rng *rand.Rand, exclude *peerEntry, ipv4Only bool) *peerEntry {
	if len(n.list) == 0 {
		return nil
	}
	// A few random probes, then a scan: the exclusions are rare.
	for range 4 {
		p := n.list[rng.IntN(len(n.list))]
		if p != exclude && (!ipv4Only || p.addr.Addr().Is4()) {
			return p
		}
	}
	start := rng.IntN(len(n.list))
	for i := range n.list {
		p := n.list[(start+i)%len(n.list)]
		if p != exclude && (!ipv4Only || p.addr.Addr().Is4()) {
			return p
		}
	}
	return nil
}

// verify adds or refreshes the peer with key at addr. It returns the entry,
// whether it is new, and the entry it displaced from addr (nil if none).
func (n *network) verify(key *peer.PublicKey, mid discovery.Mid, addr netip.AddrPort, now time.Time) (p *peerEntry, added bool, displaced *peerEntry) {
	if old := n.byAddr[addr]; old != nil && old.mid != mid {
		// Another identity now answers at this address: the old one moved
		// or is gone.
		n.removeEntry(old)
		displaced = old
	}
	if p = n.byMid[mid]; p != nil {
		if p.addr != addr {
			delete(n.byAddr, p.addr)
			p.addr = addr
			n.byAddr[addr] = p
		}
		p.lastSeen = now
		p.pinged = time.Time{}
		return p, false, displaced
	}
	p = &peerEntry{key: key, mid: mid, addr: addr, firstSeen: now, lastSeen: now, idx: len(n.list)}
	if w := n.walk[addr]; w != nil {
		p.introducedBy = w.introducedBy
		p.newStyle = w.newStyle
		n.removeWalk(w)
	}
	n.byMid[mid] = p
	n.byAddr[addr] = p
	n.list = append(n.list, p)
	return p, true, displaced
}

func (n *network) removeEntry(p *peerEntry) {
	if n.byMid[p.mid] != p {
		return
	}
	delete(n.byMid, p.mid)
	if n.byAddr[p.addr] == p {
		delete(n.byAddr, p.addr)
	}
	last := n.list[len(n.list)-1]
	n.list[p.idx] = last
	last.idx = p.idx
	n.list[len(n.list)-1] = nil
	n.list = n.list[:len(n.list)-1]
}

// discover records an introduced address; it reports whether the address
// became walkable.
func (n *network) discover(addr netip.AddrPort, by discovery.Mid, newStyle bool, now time.Time) bool {
	if n.blacklist[addr] || n.byAddr[addr] != nil {
		return false
	}
	if w := n.walk[addr]; w != nil {
		// py-ipv8 keeps the first introducer unless it is gone.
		if n.byMid[w.introducedBy] == nil {
			w.introducedBy = by
		}
		w.at = now
		w.newStyle = w.newStyle || newStyle
		return false
	}
	if len(n.walkList) >= n.maxWalk {
		n.removeWalk(n.oldestWalk())
	}
	w := &walkEntry{addr: addr, introducedBy: by, at: now, newStyle: newStyle, idx: len(n.walkList)}
	n.walk[addr] = w
	n.walkList = append(n.walkList, w)
	return true
}

func (n *network) oldestWalk() *walkEntry {
	oldest := n.walkList[0]
	for _, w := range n.walkList[1:] {
		if w.at.Before(oldest.at) {
			oldest = w
		}
	}
	return oldest
}

func (n *network) removeWalk(w *walkEntry) {
	if n.walk[w.addr] != w {
		return
	}
	delete(n.walk, w.addr)
	last := n.walkList[len(n.walkList)-1]
	n.walkList[w.idx] = last
	last.idx = w.idx
	n.walkList[len(n.walkList)-1] = nil
	n.walkList = n.walkList[:len(n.walkList)-1]
}

func (n *network) removeWalkAddr(addr netip.AddrPort) {
	if w := n.walk[addr]; w != nil {
		n.removeWalk(w)
	}
}

// introductionsFrom lists the addresses by introduced to us: walkable ones
// and verified peers.
func (n *network) introductionsFrom(by discovery.Mid) (walkable []netip.AddrPort, verified []*peerEntry) {
	for _, w := range n.walkList {
		if w.introducedBy == by {
			walkable = append(walkable, w.addr)
		}
	}
	for _, p := range n.list {
		if p.introducedBy == by {
			verified = append(verified, p)
		}
	}
	return walkable, verified
}

func (n *network) noteIntroducer(mid discovery.Mid, key *peer.PublicKey, addr netip.AddrPort, now time.Time) {
	if n.byMid[mid] != nil {
		return
	}
	if in := n.introducers[mid]; in != nil {
		in.addr, in.lastSeen = addr, now
		return
	}
	if len(n.introducers) >= maxIntroducers {
		var oldest *introducer
		for _, in := range n.introducers {
			if oldest == nil || in.lastSeen.Before(oldest.lastSeen) {
				oldest = in
			}
		}
		delete(n.introducers, oldest.mid)
	}
	n.introducers[mid] = &introducer{mid: mid, key: key, addr: addr, lastSeen: now}
}

func (p *peerEntry) info() discovery.PeerInfo {
	return discovery.PeerInfo{
		Mid: p.mid, PublicKey: p.key, ID: peer.IDFromPublicKey(p.key),
		Addr: p.addr, LAN: p.lan, Noise: p.noise, IntroducedBy: p.introducedBy,
		FirstSeen: p.firstSeen, LastSeen: p.lastSeen, RTT: p.rtt,
	}
}
