package noise

import (
	"container/heap"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/internal/clock"
	"github.com/ipv8/go-ipv8/transport"
)

// fakeClock is virtual time that moves only when a test advances it; due
// callbacks run on the advancing goroutine.
type fakeClock struct {
	mu   sync.Mutex
	now  time.Time
	q    fakeTimerQueue
	seq  int
	runM sync.Mutex // one Advance at a time
}

type fakeTimer struct {
	c     *fakeClock
	when  time.Time
	seq   int
	f     func()
	index int
}

type fakeTimerQueue []*fakeTimer

func (q fakeTimerQueue) Len() int { return len(q) }
func (q fakeTimerQueue) Less(i, j int) bool {
	if q[i].when.Equal(q[j].when) {
		return q[i].seq < q[j].seq
	}
	return q[i].when.Before(q[j].when)
}
func (q fakeTimerQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i]; q[i].index = i; q[j].index = j }
func (q *fakeTimerQueue) Push(x any)   { t := x.(*fakeTimer); t.index = len(*q); *q = append(*q, t) }
func (q *fakeTimerQueue) Pop() any {
	old := *q
	t := old[len(old)-1]
	*q = old[:len(old)-1]
	t.index = -1
	return t
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, f: f, index: -1}
	c.scheduleLocked(t, d)
	return t
}

func (c *fakeClock) scheduleLocked(t *fakeTimer, d time.Duration) {
	if d < 0 {
		d = 0
	}
	t.when = c.now.Add(d)
	c.seq++
	t.seq = c.seq
	heap.Push(&c.q, t)
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&t.c.q, t.index)
	return true
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.index >= 0
	if was {
		heap.Remove(&t.c.q, t.index)
	}
	t.c.scheduleLocked(t, d)
	return was
}

// Advance moves time forward by d, running every callback that falls due,
// in time order, each at its own time.
func (c *fakeClock) Advance(d time.Duration) {
	c.runM.Lock()
	defer c.runM.Unlock()
	c.mu.Lock()
	end := c.now.Add(d)
	for len(c.q) > 0 && !c.q[0].when.After(end) {
		t := heap.Pop(&c.q).(*fakeTimer)
		if t.when.After(c.now) {
			c.now = t.when
		}
		c.mu.Unlock()
		t.f()
		c.mu.Lock()
	}
	c.now = end
	c.mu.Unlock()
}

// fakePacket is a datagram in flight on a fakeNet.
type fakePacket struct {
	from, to netip.AddrPort
	data     []byte
}

// fakeNet connects fakePorts: one goroutine delivers packets in the order
// they were sent (the ports' read goroutine, as it were). A filter may drop,
// duplicate, or rewrite each packet; bytes are counted per address pair.
type fakeNet struct {
	mu      sync.Mutex
	cond    *sync.Cond
	ports   map[netip.AddrPort]*fakePort
	queue   []fakePacket
	busy    bool
	closed  bool
	filter  func(p *fakePacket) []fakePacket // nil: deliver as is
	sent    map[[2]netip.AddrPort]int        // bytes by {from, to}
	sentN   map[[2]netip.AddrPort]int        // packets by {from, to}
	tap     func(p fakePacket)               // sees every packet written (before the filter)
	stopped chan struct{}
}

func newFakeNet(t testing.TB) *fakeNet {
	n := &fakeNet{
		ports:   make(map[netip.AddrPort]*fakePort),
		sent:    make(map[[2]netip.AddrPort]int),
		sentN:   make(map[[2]netip.AddrPort]int),
		stopped: make(chan struct{}),
	}
	n.cond = sync.NewCond(&n.mu)
	go n.run()
	t.Cleanup(n.close)
	return n
}

func (n *fakeNet) close() {
	n.mu.Lock()
	n.closed = true
	n.cond.Broadcast()
	n.mu.Unlock()
	<-n.stopped
}

func (n *fakeNet) run() {
	defer close(n.stopped)
	n.mu.Lock()
	for {
		for len(n.queue) == 0 && !n.closed {
			n.cond.Wait()
		}
		if n.closed {
			n.mu.Unlock()
			return
		}
		p := n.queue[0]
		n.queue = n.queue[1:]
		n.busy = true
		port := n.ports[p.to]
		n.mu.Unlock()
		if port != nil {
			port.deliver(p.data, p.from)
		}
		n.mu.Lock()
		n.busy = false
		n.cond.Broadcast()
	}
}

// settle waits until every packet in flight was delivered (and whatever
// they caused, too).
func (n *fakeNet) settle() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for (len(n.queue) > 0 || n.busy) && !n.closed {
		n.cond.Wait()
	}
}

func (n *fakeNet) setFilter(f func(p *fakePacket) []fakePacket) {
	n.mu.Lock()
	n.filter = f
	n.mu.Unlock()
}

// inject puts a packet on the wire as if from sent from "from".
func (n *fakeNet) inject(from, to netip.AddrPort, b []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.queue = append(n.queue, fakePacket{from: from, to: to, data: append([]byte(nil), b...)})
	n.cond.Broadcast()
}

func (n *fakeNet) send(p fakePacket) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.tap != nil {
		n.tap(p)
	}
	out := []fakePacket{p}
	if n.filter != nil {
		out = n.filter(&p)
	}
	for _, q := range out {
		k := [2]netip.AddrPort{q.from, q.to}
		n.sent[k] += len(q.data)
		n.sentN[k]++
		n.queue = append(n.queue, fakePacket{from: q.from, to: q.to, data: append([]byte(nil), q.data...)})
	}
	n.cond.Broadcast()
}

// bytesSent reports the bytes sent from one address to another.
func (n *fakeNet) bytesSent(from, to netip.AddrPort) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sent[[2]netip.AddrPort{from, to}]
}

func (n *fakeNet) packetsSent(from, to netip.AddrPort) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sentN[[2]netip.AddrPort{from, to}]
}

// fakePort is a transport.Port on a fakeNet.
type fakePort struct {
	net  *fakeNet
	mu   sync.RWMutex
	addr netip.AddrPort
	h    [256]transport.PacketHandler
}

func (n *fakeNet) newPort(addr string) *fakePort {
	p := &fakePort{net: n, addr: netip.MustParseAddrPort(addr)}
	n.mu.Lock()
	n.ports[p.addr] = p
	n.mu.Unlock()
	return p
}

// move rebinds the port to a new address (an IP change, a NAT rebinding).
func (p *fakePort) move(addr string) {
	n := p.net
	n.mu.Lock()
	defer n.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(n.ports, p.addr)
	p.addr = netip.MustParseAddrPort(addr)
	n.ports[p.addr] = p
}

func (p *fakePort) LocalAddr() netip.AddrPort {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.addr
}

func (p *fakePort) WriteTo(b []byte, to netip.AddrPort) error {
	p.net.send(fakePacket{from: p.LocalAddr(), to: to, data: append([]byte(nil), b...)})
	return nil
}

func (p *fakePort) HandleType(t byte, h transport.PacketHandler) {
	p.mu.Lock()
	p.h[t] = h
	p.mu.Unlock()
}
func (p *fakePort) HandleSTUN(transport.PacketHandler)      {}
func (p *fakePort) HandleCommunity(transport.PacketHandler) {}

func (p *fakePort) deliver(b []byte, from netip.AddrPort) {
	if len(b) == 0 {
		return
	}
	p.mu.RLock()
	h := p.h[b[0]]
	p.mu.RUnlock()
	if h != nil {
		h(b, from)
	}
}

var _ transport.Port = (*fakePort)(nil)
