package host

import (
	"slices"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocol"
)

// Address TTLs: how long the peerstore keeps an address it was told.
const (
	// TempAddrTTL is for addresses heard second hand (discovery, introductions).
	TempAddrTTL = 2 * time.Minute
	// RecentlyConnectedAddrTTL is kept after a connection to the address ends.
	RecentlyConnectedAddrTTL = 15 * time.Minute
	// ConnectedAddrTTL is for addresses of connected peers (reset on disconnect).
	ConnectedAddrTTL = 24 * time.Hour
	// PermanentAddrTTL is for addresses the application pinned (bootstrap peers).
	PermanentAddrTTL = 100 * 365 * 24 * time.Hour
)

// Peerstore holds what the host knows of peers: addresses with expiry,
// protocols, agent version and free-form metadata. It is bounded: the least
// recently used peers are forgotten first.
type Peerstore struct {
	mu    sync.Mutex
	peers *lru.Cache[peer.ID, *peerRecord]
	now   func() time.Time
}

type addrEntry struct {
	addr    ma.Multiaddr
	expires time.Time
	ttl     time.Duration // the TTL it was last given, for UpdateAddrs
}

type peerRecord struct {
	addrs     []addrEntry
	protocols []protocol.ID
	agent     string
	pubKey    *peer.PublicKey
	meta      map[string]any
}

// NewPeerstore returns a peerstore that remembers at most size peers.
func NewPeerstore(size int) *Peerstore {
	if size <= 0 {
		size = 10_000
	}
	c, _ := lru.New[peer.ID, *peerRecord](size) // only errors for size <= 0
	return &Peerstore{peers: c, now: time.Now}
}

func (ps *Peerstore) record(id peer.ID, create bool) *peerRecord {
	r, ok := ps.peers.Get(id)
	if !ok && create {
		r = &peerRecord{}
		ps.peers.Add(id, r)
	}
	return r
}

// AddAddrs adds addresses for id (without /p2p/), each kept for ttl; an
// address already known keeps the later expiry.
func (ps *Peerstore) AddAddrs(id peer.ID, addrs []ma.Multiaddr, ttl time.Duration) {
	if id == "" || len(addrs) == 0 {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	r := ps.record(id, true)
	exp := ps.now().Add(ttl)
	for _, a := range addrs {
		if len(a) == 0 {
			continue
		}
		i := slices.IndexFunc(r.addrs, func(e addrEntry) bool { return e.addr.Equal(a) })
		if i < 0 {
			r.addrs = append(r.addrs, addrEntry{addr: a, expires: exp, ttl: ttl})
		} else if exp.After(r.addrs[i].expires) {
			r.addrs[i].expires, r.addrs[i].ttl = exp, ttl
		}
	}
}

// SetAddrs sets the TTL of the given addresses of id, adding them if missing;
// a ttl of 0 removes them.
func (ps *Peerstore) SetAddrs(id peer.ID, addrs []ma.Multiaddr, ttl time.Duration) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	r := ps.record(id, ttl > 0)
	if r == nil {
		return
	}
	exp := ps.now().Add(ttl)
	for _, a := range addrs {
		i := slices.IndexFunc(r.addrs, func(e addrEntry) bool { return e.addr.Equal(a) })
		switch {
		case ttl <= 0 && i >= 0:
			r.addrs = slices.Delete(r.addrs, i, i+1)
		case ttl > 0 && i >= 0:
			r.addrs[i].expires, r.addrs[i].ttl = exp, ttl
		case ttl > 0:
			r.addrs = append(r.addrs, addrEntry{addr: a, expires: exp, ttl: ttl})
		}
	}
}

// UpdateAddrs gives every address of id that was last given oldTTL the TTL
// newTTL from now; the host moves a peer's addresses from ConnectedAddrTTL to
// RecentlyConnectedAddrTTL when its connection ends.
func (ps *Peerstore) UpdateAddrs(id peer.ID, oldTTL, newTTL time.Duration) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	r := ps.record(id, false)
	if r == nil {
		return
	}
	now := ps.now()
	for i := range r.addrs {
		if r.addrs[i].ttl == oldTTL {
			r.addrs[i].expires, r.addrs[i].ttl = now.Add(newTTL), newTTL
		}
	}
}

// Addrs returns the unexpired addresses of id.
func (ps *Peerstore) Addrs(id peer.ID) []ma.Multiaddr {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	r := ps.record(id, false)
	if r == nil {
		return nil
	}
	now := ps.now()
	out := make([]ma.Multiaddr, 0, len(r.addrs))
	kept := r.addrs[:0]
	for _, e := range r.addrs {
		if e.expires.After(now) {
			kept = append(kept, e)
			out = append(out, e.addr)
		}
	}
	r.addrs = kept
	return out
}

// AddrInfo returns id with its unexpired addresses.
func (ps *Peerstore) AddrInfo(id peer.ID) peer.AddrInfo {
	return peer.AddrInfo{ID: id, Addrs: ps.Addrs(id)}
}

// SetProtocols records the protocols id says it serves.
func (ps *Peerstore) SetProtocols(id peer.ID, protos []protocol.ID) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.record(id, true).protocols = slices.Clone(protos)
}

// Protocols returns the protocols id said it serves (nil when not known).
func (ps *Peerstore) Protocols(id peer.ID) []protocol.ID {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if r := ps.record(id, false); r != nil {
		return slices.Clone(r.protocols)
	}
	return nil
}

// SupportsProtocol reports whether id is known to serve p; known is false
// when the peer's protocols were never learnt.
func (ps *Peerstore) SupportsProtocol(id peer.ID, p protocol.ID) (supported, known bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	r := ps.record(id, false)
	if r == nil || r.protocols == nil {
		return false, false
	}
	return slices.Contains(r.protocols, p), true
}

// SetAgent records the peer's agent version.
func (ps *Peerstore) SetAgent(id peer.ID, agent string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.record(id, true).agent = agent
}

// Agent returns the peer's agent version ("" when not known).
func (ps *Peerstore) Agent(id peer.ID) string {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if r := ps.record(id, false); r != nil {
		return r.agent
	}
	return ""
}

// SetPublicKey records the key a peer proved it holds (it may differ from
// the native key of its ID for identities imported from py-ipv8).
func (ps *Peerstore) SetPublicKey(id peer.ID, k *peer.PublicKey) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.record(id, true).pubKey = k
}

// PublicKey returns the recorded key of id, or the native key of its ID.
func (ps *Peerstore) PublicKey(id peer.ID) (*peer.PublicKey, error) {
	ps.mu.Lock()
	r := ps.record(id, false)
	ps.mu.Unlock()
	if r != nil && r.pubKey != nil {
		return r.pubKey, nil
	}
	return id.PublicKey()
}

// Put stores application metadata under key for id.
func (ps *Peerstore) Put(id peer.ID, key string, value any) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	r := ps.record(id, true)
	if r.meta == nil {
		r.meta = make(map[string]any)
	}
	r.meta[key] = value
}

// Get returns the metadata stored under key for id.
func (ps *Peerstore) Get(id peer.ID, key string) (any, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	r := ps.record(id, false)
	if r == nil {
		return nil, false
	}
	v, ok := r.meta[key]
	return v, ok
}

// Peers returns the IDs of every peer in the store.
func (ps *Peerstore) Peers() []peer.ID {
	return ps.peers.Keys()
}

// Len is the number of peers in the store.
func (ps *Peerstore) Len() int { return ps.peers.Len() }
