package netsim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipv8/go-ipv8/internal/clock"
)

// DefaultMTU is the largest UDP payload a link carries unless Config.MTU or
// Link.MTU says otherwise: a 1500-byte frame less a 40-byte IPv6 header and
// an 8-byte UDP header, so what passes here passes on IPv4 and IPv6.
const DefaultMTU = 1452

// VirtualEpoch is what a virtual network's Clock().Now() returns before
// any time has run.
var VirtualEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Errors a caller may branch on with errors.Is.
var (
	// ErrPortInUse: ListenUDP on a port the host already has open.
	ErrPortInUse = errors.New("netsim: port already in use")
	// ErrWouldBlock: a read on a virtual-time network found no queued
	// packet. Virtual time only advances inside RunFor/RunUntil, so a
	// blocking read could never be satisfied; use Conn.SetHandler.
	ErrWouldBlock = errors.New("netsim: no packet queued (virtual-time mode does not block reads; use Conn.SetHandler)")
	// ErrNetworkClosed: the Network was closed.
	ErrNetworkClosed = errors.New("netsim: network closed")
)

// Config configures a Network.
type Config struct {
	// Seed seeds all randomness of the network.
	Seed uint64
	// Virtual selects virtual-time mode (see the package doc).
	Virtual bool
	// MTU is the largest UDP payload any link carries; 0 means DefaultMTU.
	MTU int
}

// Network is a virtual packet network. All its methods are safe for
// concurrent use.
type Network struct {
	cfg     Config
	mtu     int
	virtual bool

	mu       sync.Mutex
	heap     eventHeap
	seq      uint64
	closed   bool
	internet *realm
	hosts    []*Host
	nextID   uint64
	rng      rand.PCG // ephemeral ports
	stats    counters

	// real-time mode
	start    time.Time
	wakeAt   time.Duration // when the sleeping scheduler wakes; -1 while it runs
	kick     chan struct{}
	closing  chan struct{}
	done     chan struct{}
	inAction atomic.Bool // the scheduler is running deliveries (Close must not wait for it)

	// virtual-time mode
	vnow    time.Duration
	running bool // RunFor/RunUntil is active
}

// realm is an address space: the internet, or the inside of a NAT.
type realm struct {
	nat     *NAT // nil for the internet
	members map[netip.Addr]member
}

// member is what holds an address in a realm: a host, or a NAT by its
// outside address.
type member struct {
	host *Host
	nat  *NAT
}

// New builds a network. In real-time mode it starts the scheduler
// goroutine; Close stops it.
func New(cfg Config) *Network {
	n := &Network{
		cfg:      cfg,
		mtu:      cfg.MTU,
		virtual:  cfg.Virtual,
		internet: &realm{members: make(map[netip.Addr]member)},
		wakeAt:   -1,
	}
	if n.mtu <= 0 {
		n.mtu = DefaultMTU
	}
	n.rng.Seed(splitmix(cfg.Seed), splitmix(cfg.Seed^0x6e657473696d))
	if !n.virtual {
		n.start = time.Now()
		n.kick = make(chan struct{}, 1)
		n.closing = make(chan struct{})
		n.done = make(chan struct{})
		go n.loop()
	}
	return n
}

// splitmix is SplitMix64's finaliser: it spreads a seed and a stream number
// into well-mixed PCG seeds.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// seedStream seeds rng as stream number stream of the network's seed.
func (n *Network) seedStream(rng *rand.PCG, stream uint64) {
	rng.Seed(splitmix(n.cfg.Seed^splitmix(stream)), splitmix(stream+0x5851f42d4c957f2d))
}

// newID numbers hosts and NATs in creation order; the number picks their
// random streams.
func (n *Network) newID() uint64 {
	n.nextID++
	return n.nextID
}

// now is the network time. Callers hold n.mu, which keeps it monotonic
// with respect to the events processed.
func (n *Network) now() time.Duration {
	if n.virtual {
		return n.vnow
	}
	return time.Since(n.start)
}

// Stats reports the network's packet counters.
func (n *Network) Stats() Stats { return n.stats.snapshot() }

// MTU is the network-wide MTU in bytes of UDP payload.
func (n *Network) MTU() int { return n.mtu }

func (n *Network) drop(r DropReason) { n.stats.drops[r].Add(1) }

// Clock returns the network's clock: the wall clock in real-time mode, the
// virtual clock (advanced by RunFor/RunUntil) in virtual mode.
func (n *Network) Clock() clock.Clock {
	if n.virtual {
		return virtualClock{n}
	}
	return clock.Real
}

// Close stops the network: pending packets and timers are discarded, every
// Conn is closed (blocked readers get net.ErrClosed) and later writes fail.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	for len(n.heap) > 0 {
		n.heap.pop()
	}
	var conns []*Conn
	for _, h := range n.hosts {
		for _, c := range h.conns {
			conns = append(conns, c)
		}
		h.conns = nil
	}
	n.mu.Unlock()
	for _, c := range conns {
		c.shut()
	}
	if !n.virtual {
		close(n.closing)
		// A delivery callback may be the one closing the network; it runs
		// on the scheduler goroutine, which then exits on its own.
		if !n.inAction.Load() {
			<-n.done
		}
	}
	return nil
}

// schedule pushes ev at time at. Callers hold n.mu.
func (n *Network) schedule(ev *event, at time.Duration) {
	n.seq++
	ev.at = at
	ev.seq = n.seq
	n.heap.push(ev)
	if !n.virtual && at < n.wakeAt {
		n.wakeAt = at
		select {
		case n.kick <- struct{}{}:
		default:
		}
	}
}

// forward moves ev on after a pipe's verdict v: scheduled as kind at the
// arrival time, with a copy if v says so. Callers hold n.mu.
func (n *Network) forward(ev *event, v verdict, kind evKind) {
	if v.drop != dropNone {
		n.drop(v.drop)
		return
	}
	ev.kind = kind
	if v.reorder {
		n.stats.reordered.Add(1)
	}
	if v.dup {
		n.stats.duplicated.Add(1)
		cp := *ev
		cp.data = append([]byte(nil), ev.data...)
		n.schedule(&cp, v.arrival)
	}
	n.schedule(ev, v.arrival)
}

// action is work that runs outside n.mu after an event: a delivery to a
// Conn, or a virtual timer's function.
type action struct {
	conn *Conn
	ev   *event
	fn   func()
}

func (a *action) run(n *Network) {
	if a.fn != nil {
		a.fn()
		return
	}
	a.conn.deliver(a.ev.data, a.ev.src)
}

// process runs one popped event. Callers hold n.mu.
func (n *Network) process(ev *event) (action, bool) {
	switch ev.kind {
	case evRealm:
		n.route(ev, ev.realm, false)
	case evNAT:
		nat := ev.nat
		if nat.gen != ev.gen || ev.dst.Addr() != nat.ip {
			n.drop(DropNoRoute)
			break
		}
		internal, r := nat.inbound(ev.src, ev.dst, ev.at)
		if r != dropNone {
			n.drop(r)
			break
		}
		ev.dst = internal
		n.route(ev, nat.inside, true)
	case evHost:
		h := ev.host
		if h.gen != ev.gen {
			n.drop(DropNoRoute)
			break
		}
		c := h.conns[ev.dst.Port()]
		if c == nil {
			n.drop(DropNoListener)
			break
		}
		return action{conn: c, ev: ev}, true
	case evTimer:
		return action{fn: ev.timer.fn}, true
	}
	return action{}, false
}

// route carries a packet that has reached the router of realm r, at time
// ev.at. inbound is set once a NAT has translated the destination to one
// of its inside addresses: the packet must then be delivered inside and
// never goes back out. Callers hold n.mu.
func (n *Network) route(ev *event, r *realm, inbound bool) {
	for {
		if m, ok := r.members[ev.dst.Addr()]; ok {
			if h := m.host; h != nil {
				ev.host, ev.gen = h, h.gen
				n.forward(ev, h.down.transmit(&h.link, n.mtu, len(ev.data), ev.at), evHost)
			} else {
				nat := m.nat
				ev.nat, ev.gen = nat, nat.gen
				n.forward(ev, nat.down.transmit(&nat.link, n.mtu, len(ev.data), ev.at), evNAT)
			}
			return
		}
		nat := r.nat
		if inbound || nat == nil {
			n.drop(DropNoRoute)
			return
		}
		hairpin := ev.dst.Addr() == nat.ip
		if hairpin && !nat.cfg.Hairpinning {
			// Addressed to the router itself, which has no such service:
			// dropped before any translation, so no mapping is made.
			n.drop(DropHairpin)
			return
		}
		ext, dr := nat.outbound(ev.src, ev.dst, ev.at)
		if dr != dropNone {
			n.drop(dr)
			return
		}
		if hairpin {
			// From inside to the NAT's own public address: the packet
			// turns around in the NAT, from the sender's external address,
			// and is filtered like any inbound packet (RFC 4787 REQ-9).
			internal, dr := nat.inbound(ext, ev.dst, ev.at)
			if dr != dropNone {
				n.drop(dr)
				return
			}
			ev.src, ev.dst = ext, internal
			inbound = true
			continue
		}
		ev.src = ext
		ev.realm = nat.parent
		n.forward(ev, nat.up.transmit(&nat.link, n.mtu, len(ev.data), ev.at), evRealm)
		return
	}
}

// send is a Conn's write: the packet enters the sender's up link now.
func (n *Network) send(c *Conn, b []byte, to netip.AddrPort) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrNetworkClosed
	}
	if c.closed.Load() {
		return errClosed
	}
	h := c.host
	n.stats.sent.Add(1)
	v := h.up.transmit(&h.link, n.mtu, len(b), n.now())
	if v.drop != dropNone {
		n.drop(v.drop)
		return nil
	}
	ev := &event{
		src:   netip.AddrPortFrom(h.ip, c.port),
		dst:   to,
		data:  append([]byte(nil), b...),
		realm: h.realm,
		idx:   -1,
	}
	n.forward(ev, v, evRealm)
	return nil
}

// loop is the real-time scheduler: the one goroutine that moves every
// packet of the network, in time order.
func (n *Network) loop() {
	defer close(n.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var batch []action
	for {
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return
		}
		n.wakeAt = -1
		now := n.now()
		for len(n.heap) > 0 && n.heap[0].at <= now {
			if a, ok := n.process(n.heap.pop()); ok {
				batch = append(batch, a)
			}
		}
		if len(batch) > 0 {
			n.mu.Unlock()
			n.inAction.Store(true)
			for i := range batch {
				batch[i].run(n)
				batch[i] = action{}
			}
			n.inAction.Store(false)
			batch = batch[:0]
			continue
		}
		wait := time.Duration(-1)
		n.wakeAt = math.MaxInt64
		if len(n.heap) > 0 {
			n.wakeAt = n.heap[0].at
			wait = n.wakeAt - now
		}
		n.mu.Unlock()
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-timer.C:
		case <-n.kick:
			timer.Stop()
		case <-n.closing:
			timer.Stop()
			return
		}
	}
}

// RunFor advances virtual time by d, running every packet delivery and
// timer due meanwhile in time order on the caller's goroutine. It panics
// in real-time mode, and when called from a callback it is running.
func (n *Network) RunFor(d time.Duration) {
	n.mu.Lock()
	target := n.vnow + max(d, 0)
	n.mu.Unlock()
	n.runTo(target)
}

// RunUntil advances virtual time to t (see RunFor); a t in the past runs
// nothing.
func (n *Network) RunUntil(t time.Time) {
	n.runTo(t.Sub(VirtualEpoch))
}

func (n *Network) runTo(target time.Duration) {
	if !n.virtual {
		panic("netsim: RunFor/RunUntil need a virtual-time network (Config.Virtual); a real-time network runs by itself")
	}
	n.mu.Lock()
	if n.running {
		n.mu.Unlock()
		panic("netsim: RunFor/RunUntil called while already running (from a callback or another goroutine)")
	}
	n.running = true
	for !n.closed && len(n.heap) > 0 && n.heap[0].at <= target {
		ev := n.heap.pop()
		n.vnow = max(n.vnow, ev.at)
		if a, ok := n.process(ev); ok {
			n.mu.Unlock()
			a.run(n)
			n.mu.Lock()
		}
	}
	n.vnow = max(n.vnow, target)
	n.running = false
	n.mu.Unlock()
}

// Pending is the number of packets in flight and timers scheduled.
func (n *Network) Pending() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.heap)
}

func (n *Network) String() string {
	mode := "real-time"
	if n.virtual {
		mode = "virtual"
	}
	return fmt.Sprintf("netsim.Network(%s, seed %d)", mode, n.cfg.Seed)
}
