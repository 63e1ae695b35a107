// Package discovery defines how a go-ipv8 Host learns about other peers:
// the peers a discovery mechanism has verified (with the keys, addresses and
// capabilities needed to dial them), events when that set changes, and the
// neighbourhood graph (who introduced whom, last seen, RTT).
//
// Implementations live in subpackages: discovery/community runs IPv8
// communities (py-ipv8's overlays) with random-walk discovery, introductions
// and NAT puncture. The Host depends only on the interfaces here.
package discovery

import (
	"encoding/hex"
	"net/netip"
	"time"

	"github.com/ipv8/go-ipv8/peer"
)

// Mid is py-ipv8's member ID of a peer: SHA-1 of its LibNaCLPK public key.
type Mid [peer.MidSize]byte

// String returns the mid in hex, as py-ipv8 prints it.
func (m Mid) String() string { return hex.EncodeToString(m[:]) }

// IsZero reports whether m is the zero mid ("nobody").
func (m Mid) IsZero() bool { return m == Mid{} }

// PeerInfo is what discovery knows about one verified peer: enough for the
// Host to dial it (ID, public key, address, whether it accepts go-ipv8 Noise
// sessions there) and to show where it came from.
type PeerInfo struct {
	Mid       Mid
	PublicKey *peer.PublicKey
	// ID is derived from PublicKey; a peer that advertises Noise can be
	// dialled with it (its Noise static key is PublicKey.X25519()).
	ID peer.ID
	// Addr is where the peer's packets come from (its WAN address as we
	// see it); LAN is the local address it reported (zero when unknown).
	Addr netip.AddrPort
	LAN  netip.AddrPort
	// Noise reports that the peer advertised go-ipv8 Noise sessions on Addr
	// (py-ipv8 peers never do).
	Noise bool
	// IntroducedBy is the peer that introduced this one to us; zero when we
	// met it directly (it walked to us, or we bootstrapped to it).
	IntroducedBy Mid
	FirstSeen    time.Time
	LastSeen     time.Time
	// RTT is the smoothed round-trip time of our introduction requests to
	// the peer; zero until one was answered.
	RTT time.Duration
}

// EventKind says what happened to a peer.
type EventKind uint8

const (
	// PeerAdded: a peer was verified (a signed message from it arrived and
	// it was added to the peer table).
	PeerAdded EventKind = iota + 1
	// PeerRemoved: a peer was dropped (unresponsive, or replaced).
	PeerRemoved
)

func (k EventKind) String() string {
	switch k {
	case PeerAdded:
		return "added"
	case PeerRemoved:
		return "removed"
	}
	return "unknown"
}

// Event reports a change of the verified peer set.
type Event struct {
	Kind EventKind
	Peer PeerInfo
}

// Discoverer is a source of verified peers.
type Discoverer interface {
	// Peers returns a snapshot of the verified peers.
	Peers() []PeerInfo
	// Lookup returns the verified peer with the given ID.
	Lookup(id peer.ID) (PeerInfo, bool)
	// Subscribe calls f for every later change of the verified set, on the
	// goroutine that made the change: f must not block. cancel removes f.
	Subscribe(f func(Event)) (cancel func())
}

// Node is one peer in a neighbourhood graph.
type Node struct {
	Mid  Mid
	ID   peer.ID // empty when only the mid is known
	Addr netip.AddrPort
	// Verified reports that the node is in our verified peer table now;
	// introducers that were dropped or never verified (trackers) are not.
	Verified bool
	Noise    bool
	LastSeen time.Time
	RTT      time.Duration
}

// Edge says that From introduced To to the graph's owner.
type Edge struct {
	From, To Mid
	At       time.Time
}

// Graph is a snapshot of the neighbourhood: the owner (Self), the peers it
// knows and the introductions between them.
type Graph struct {
	Self  Mid
	Taken time.Time
	Nodes []Node
	Edges []Edge
}

// GraphSource is implemented by discovery mechanisms that keep a
// neighbourhood graph; the Host exposes it as Graph().
type GraphSource interface {
	Graph() Graph
}
