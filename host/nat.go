package host

import (
	"context"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipv8/go-ipv8/transport"
)

// NATTraversal is what the host asks of NAT traversal: relayed addresses
// to advertise, and the move of a relayed Conn to a direct path. The root
// package builds it from nat/relay (reservations, circuits), nat/punch
// (hole punching coordinated over the circuit) and nat/pathsel (keeping
// the session on the better path); the host needs only this.
type NATTraversal interface {
	// Start begins holding reservations at the configured relays;
	// addrsChanged is called (on any goroutine) when RelayAddrs changes.
	Start(addrsChanged func())
	// RelayAddrs are the relayed addresses the host is reachable at now,
	// each /…/udp/N/ipv8/p2p/RELAY/p2p-circuit (without /p2p/SELF, like
	// the other addresses of Addrs).
	RelayAddrs() []ma.Multiaddr
	// Upgrade is called, on a goroutine of its own, for each Conn that
	// starts relayed: it tries to move c to a direct path (a hole punch)
	// and keeps it on the better path until ctx ends (c closed or the
	// host closing). It may return at once when the other side drives
	// the move.
	Upgrade(ctx context.Context, c transport.Conn)
}

// relayed reports whether c's packets go through a relay now.
func relayed(c transport.Conn) bool { return c.Stats().Path == transport.PathRelayed }

// remoteAddr is the address to remember for c's peer: its remote address,
// unless the Conn is relayed (then that is the relay's, not the peer's).
func remoteAddr(c transport.Conn) ma.Multiaddr {
	if relayed(c) {
		return nil
	}
	return c.RemoteMultiaddr()
}

// pathPoll is how often a relayed Conn's path is checked when the Conn
// does not publish path changes (or a change went unpublished).
const pathPoll = time.Second

// watchRelayed follows a Conn that started relayed until it ends: it lets
// NAT traversal upgrade it, and emits EvtPeerPathChanged (and
// EvtPeerAddrChanged) when the Conn moves between the relay and a direct
// path. One goroutine per relayed Conn (plus the upgrade's): relayed Conns
// are few, and each has a path selector pinging anyway.
func (h *Host) watchRelayed(e *connEntry) {
	defer h.wg.Done()
	c := e.conn
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	if h.cfg.NAT != nil {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.cfg.NAT.Upgrade(ctx, c)
		}()
	}
	var events <-chan transport.PathEvent
	if ps, ok := c.(transport.PathSubscriber); ok {
		ch, unsubscribe := ps.SubscribePathChanges()
		defer unsubscribe()
		events = ch
	}
	tick := time.NewTicker(pathPoll)
	defer tick.Stop()
	last := transport.PathRelayed
	for {
		select {
		case <-c.Done():
			return
		case <-h.ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				events = nil
			}
		case <-tick.C:
		}
		now := c.Stats().Path
		if now == last {
			continue
		}
		last = now
		h.log.Debug("connection path changed", "peer", c.RemotePeer(), "path", now, "addr", c.RemoteMultiaddr())
		h.bus.emit(EvtPeerPathChanged{Peer: c.RemotePeer(), Conn: c, Path: now, Addr: c.RemoteMultiaddr()})
		h.checkRemoteAddr(e)
	}
}
