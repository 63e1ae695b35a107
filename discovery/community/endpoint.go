package community

import (
	"context"
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
//
// By default the port's read goroutine only copies each packet into the
// endpoint's queue; one worker goroutine, alive while packets wait, takes
// what is queued (up to 256, never waiting for more) and checks their
// signatures as one batch (verify.go) before handing them, in arrival
// order, to their communities. A lone packet is thus handled at once, and
// under load the batches grow by themselves. With EndpointConfig.Inline
// each packet is handled on the read goroutine instead, alone.
type Endpoint struct {
	port       transport.Port
	keys       *KeyCache
	inline     bool
	queueLimit int

	mu    sync.RWMutex
	comms map[wire.CommunityID]*Community

	// The queue between the port and the worker.
	qmu     sync.Mutex
	queue   []inbound
	head    int
	free    [][]byte
	running bool          // a worker is draining the queue
	idle    chan struct{} // closed when that worker ends

	work     procState // the worker's (one worker at a time)
	inlineMu sync.Mutex
	inlineSt procState

	unknownCommunity atomic.Uint64
	malformed        atomic.Uint64
	overflow         atomic.Uint64
}

// inbound is a queued packet: a copy the endpoint owns.
type inbound struct {
	pkt  []byte
	from netip.AddrPort
}

// EndpointConfig configures an Endpoint; zero values take the defaults.
type EndpointConfig struct {
	// Keys caches the parsed public keys of senders; nil uses a cache
	// shared by the process.
	Keys *KeyCache
	// Inline handles each packet on the port's read goroutine as it
	// arrives, its signature checked alone: for ports that deliver from a
	// virtual clock (internal/netsim simulations), where a packet must be
	// handled before time moves on. A port that says so (InlinePort) gets
	// it whatever this says.
	Inline bool
	// QueueLimit is the most packets waiting for the worker (4096); more
	// are dropped and counted (EndpointStats.Overflow).
	QueueLimit int
}

// InlinePort is implemented by ports whose deliveries must be handled
// before the call returns, such as discovery/community/sim's adapter of a
// virtual-time netsim Conn.
type InlinePort interface {
	transport.Port
	InlineDelivery() bool
}

// NewEndpoint registers for the community packets of port (one Endpoint
// per port: it takes the port's community handler), with a queue and
// batched signature checks. keys caches the parsed public keys of senders;
// nil uses a cache shared by the process.
func NewEndpoint(port transport.Port, keys *KeyCache) *Endpoint {
	return NewEndpointWith(port, EndpointConfig{Keys: keys})
}

// NewEndpointWith is NewEndpoint configured by cfg.
func NewEndpointWith(port transport.Port, cfg EndpointConfig) *Endpoint {
	if cfg.Keys == nil {
		cfg.Keys = sharedKeys
	}
	if ip, ok := port.(InlinePort); ok && ip.InlineDelivery() {
		cfg.Inline = true
	}
	if cfg.QueueLimit <= 0 {
		cfg.QueueLimit = 4096
	}
	e := &Endpoint{port: port, keys: cfg.Keys, inline: cfg.Inline, queueLimit: cfg.QueueLimit,
		comms: make(map[wire.CommunityID]*Community)}
	port.HandleCommunity(e.handle)
	return e
}

// Port returns the port the endpoint sends from.
func (e *Endpoint) Port() transport.Port { return e.port }

// Close stops routing packets (those already queued are still handled);
// the communities stay registered but hear nothing more.
func (e *Endpoint) Close() { e.port.HandleCommunity(nil) }

// Flush waits until the queue is empty and no packet is being handled, or
// until ctx ends (its error is returned).
func (e *Endpoint) Flush(ctx context.Context) error {
	for {
		e.qmu.Lock()
		running, idle := e.running, e.idle
		e.qmu.Unlock()
		if !running {
			return nil
		}
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

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

// maxFree is the most packet buffers kept for reuse.
const maxFree = 2 * maxBatch

// handle runs on the port's read goroutine: it queues a copy of pkt (or,
// inline, handles it).
func (e *Endpoint) handle(pkt []byte, from netip.AddrPort) {
	if _, _, err := wire.PeekHeader(pkt); err != nil {
		e.malformed.Add(1)
		return
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if e.inline {
		e.inlineMu.Lock()
		e.inlineSt.one[0] = inbound{pkt, from}
		e.process(e.inlineSt.one[:], &e.inlineSt)
		e.inlineSt.one[0] = inbound{}
		e.inlineMu.Unlock()
		return
	}
	e.qmu.Lock()
	if len(e.queue)-e.head >= e.queueLimit {
		e.qmu.Unlock()
		e.overflow.Add(1)
		return
	}
	if e.head > 0 && len(e.queue) == cap(e.queue) {
		n := copy(e.queue, e.queue[e.head:])
		clear(e.queue[n:])
		e.queue, e.head = e.queue[:n], 0
	}
	var buf []byte
	if n := len(e.free); n > 0 && cap(e.free[n-1]) >= len(pkt) {
		buf, e.free = e.free[n-1], e.free[:n-1]
	}
	e.queue = append(e.queue, inbound{append(buf[:0], pkt...), from})
	start := !e.running
	if start {
		e.running, e.idle = true, make(chan struct{})
	}
	e.qmu.Unlock()
	if start {
		go e.drain()
	}
}

// drain is the worker: it handles what is queued, a batch at a time, and
// ends when the queue is empty.
func (e *Endpoint) drain() {
	var batch []inbound
	for {
		e.qmu.Lock()
		for _, in := range batch {
			if len(e.free) < maxFree {
				e.free = append(e.free, in.pkt[:0])
			}
		}
		n := min(len(e.queue)-e.head, maxBatch)
		if n == 0 {
			e.queue, e.head = e.queue[:0], 0
			e.running = false
			close(e.idle)
			e.qmu.Unlock()
			return
		}
		batch = append(batch[:0], e.queue[e.head:e.head+n]...)
		clear(e.queue[e.head : e.head+n])
		e.head += n
		if e.head == len(e.queue) {
			e.queue, e.head = e.queue[:0], 0
		}
		e.qmu.Unlock()
		e.process(batch, &e.work)
	}
}

// EndpointStats counts packets the endpoint could not route.
type EndpointStats struct {
	UnknownCommunity uint64 // no community with that ID runs here
	Malformed        uint64 // shorter than a header
	Overflow         uint64 // dropped: the queue was full
	Batches          uint64 // signature batches checked together
	BatchFailures    uint64 // batches with a bad signature (checked again one by one)
}

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() EndpointStats {
	return EndpointStats{UnknownCommunity: e.unknownCommunity.Load(), Malformed: e.malformed.Load(),
		Overflow: e.overflow.Load(), Batches: e.work.v.batches.Load(), BatchFailures: e.work.v.batchFailures.Load()}
}

func (e *Endpoint) send(b []byte, to netip.AddrPort) error { return e.port.WriteTo(b, to) }
