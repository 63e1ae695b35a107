package community

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/transport"
)

// ErrDuplicateCommunity: a community with the same ID already runs on the
// endpoint.
var ErrDuplicateCommunity = errors.New("community: a community with this ID already runs on the endpoint")

// Endpoint owns the community packets of one transport.Port (those that
// start 0x00 0x02) and routes each to the community its 20-byte ID names,
// so a host runs any number of communities on its one UDP port.
type Endpoint struct {
	port transport.Port
	keys *KeyCache

	mu    sync.RWMutex
	comms map[wire.CommunityID]*Community

	unknownCommunity atomic.Uint64
	malformed        atomic.Uint64
}

// NewEndpoint registers for the community packets of port (one Endpoint
// per port: it takes the port's community handler). keys caches the parsed
// public keys of senders; nil uses a cache shared by the process.
func NewEndpoint(port transport.Port, keys *KeyCache) *Endpoint {
	if keys == nil {
		keys = sharedKeys
	}
	e := &Endpoint{port: port, keys: keys, comms: make(map[wire.CommunityID]*Community)}
	port.HandleCommunity(e.handle)
	return e
}

// Port returns the port the endpoint sends from.
func (e *Endpoint) Port() transport.Port { return e.port }

// Close stops routing packets; the communities stay registered but hear
// nothing more.
func (e *Endpoint) Close() { e.port.HandleCommunity(nil) }

func (e *Endpoint) add(c *Community) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, dup := e.comms[c.id]; dup {
		return fmt.Errorf("%w: %s", ErrDuplicateCommunity, c.id)
	}
	e.comms[c.id] = c
	return nil
}

func (e *Endpoint) remove(c *Community) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.comms[c.id] == c {
		delete(e.comms, c.id)
	}
}

// handle runs on the port's read goroutine.
func (e *Endpoint) handle(pkt []byte, from netip.AddrPort) {
	id, _, err := wire.PeekHeader(pkt)
	if err != nil {
		e.malformed.Add(1)
		return
	}
	e.mu.RLock()
	c := e.comms[id]
	e.mu.RUnlock()
	if c == nil {
		e.unknownCommunity.Add(1)
		return
	}
	c.receive(pkt, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()))
}

// EndpointStats counts packets the endpoint could not route.
type EndpointStats struct {
	UnknownCommunity uint64 // no community with that ID runs here
	Malformed        uint64 // shorter than a header
}

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() EndpointStats {
	return EndpointStats{UnknownCommunity: e.unknownCommunity.Load(), Malformed: e.malformed.Load()}
}

func (e *Endpoint) send(b []byte, to netip.AddrPort) error { return e.port.WriteTo(b, to) }
