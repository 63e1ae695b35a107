package host

import (
	"sync"
	"sync/atomic"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocol"
	"github.com/ipv8/go-ipv8/transport"
)

// Event is something the host reports on its bus: one of the Evt* types.
type Event interface{ event() }

// EvtPeerConnected: the host has its first Conn to Peer.
type EvtPeerConnected struct {
	Peer peer.ID
	Conn transport.Conn
	// Inbound is true when the remote dialled.
	Inbound bool
}

// EvtPeerDisconnected: the host's last Conn to Peer ended.
type EvtPeerDisconnected struct {
	Peer peer.ID
}

// EvtPeerIdentified: identify told the host what Peer serves and where it
// listens.
type EvtPeerIdentified struct {
	Peer         peer.ID
	Protocols    []protocol.ID
	ListenAddrs  []ma.Multiaddr
	AgentVersion string
	// ObservedAddr is our address as Peer sees it.
	ObservedAddr ma.Multiaddr
}

// EvtLocalAddrsChanged: the host's own advertised addresses changed (a new
// observed public address, an interface change).
type EvtLocalAddrsChanged struct {
	Addrs []ma.Multiaddr
}

// EvtPeerAddrChanged: the remote address of a Conn changed (the peer roamed
// or its NAT rebinding moved it) while the connection stayed up.
type EvtPeerAddrChanged struct {
	Peer     peer.ID
	Old, New ma.Multiaddr
}

// EvtPeerPathChanged: a Conn that started relayed moved to a direct path
// (a hole punch succeeded and NAT traversal moved its session), or back to
// the relay (the direct path died). Streams carry on across the move.
type EvtPeerPathChanged struct {
	Peer peer.ID
	Conn transport.Conn
	// Path is where the Conn's packets go now.
	Path transport.PathKind
	// Addr is the Conn's remote address now: the peer's, or the relay's.
	Addr ma.Multiaddr
}

func (EvtPeerPathChanged) event()   {}
func (EvtPeerConnected) event()     {}
func (EvtPeerDisconnected) event()  {}
func (EvtPeerIdentified) event()    {}
func (EvtLocalAddrsChanged) event() {}
func (EvtPeerAddrChanged) event()   {}

// Subscription receives the host's events on C until Close.
type Subscription struct {
	C       <-chan Event
	c       chan Event
	bus     *eventBus
	dropped atomic.Uint64
	once    sync.Once
}

// Dropped is how many events were not delivered because C was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close stops delivery and closes C.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
		close(s.c)
	})
}

// eventBus fans events out to subscribers without ever blocking the host:
// a subscriber that does not keep up loses events (counted in Dropped).
type eventBus struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
}

func (b *eventBus) subscribe(buffer int) *Subscription {
	if buffer <= 0 {
		buffer = 64
	}
	c := make(chan Event, buffer)
	s := &Subscription{C: c, c: c, bus: b}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(c)
		s.once.Do(func() {})
		return s
	}
	if b.subs == nil {
		b.subs = make(map[*Subscription]struct{})
	}
	b.subs[s] = struct{}{}
	return s
}

func (b *eventBus) emit(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.c <- e:
		default:
			s.dropped.Add(1)
		}
	}
}

func (b *eventBus) close() {
	b.mu.Lock()
	subs := b.subs
	b.subs = nil
	b.closed = true
	b.mu.Unlock()
	for s := range subs {
		s.once.Do(func() { close(s.c) })
	}
}
