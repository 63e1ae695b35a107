package labtest

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// delayConn delays every datagram it sends by a fixed time (a FIFO: the
// order is kept), to give the lab's sub-millisecond links the RTT of a
// real path; reads pass through. The lab's kernel has no netem, so the
// delay sits in the sender, before its NAT.
type delayConn struct {
	*net.UDPConn
	d time.Duration

	mu     sync.Mutex
	q      []delayed
	wake   chan struct{}
	closed chan struct{}
	once   sync.Once
}

type delayed struct {
	b   []byte
	to  netip.AddrPort
	due time.Time
}

func newDelayConn(c *net.UDPConn, d time.Duration) *delayConn {
	dc := &delayConn{UDPConn: c, d: d, wake: make(chan struct{}, 1), closed: make(chan struct{})}
	go dc.run()
	return dc
}

func (dc *delayConn) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	dc.mu.Lock()
	dc.q = append(dc.q, delayed{append([]byte(nil), b...), to, time.Now().Add(dc.d)})
	dc.mu.Unlock()
	select {
	case dc.wake <- struct{}{}:
	default:
	}
	return len(b), nil
}

func (dc *delayConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	return dc.WriteToUDPAddrPort(b, addr.(*net.UDPAddr).AddrPort())
}

func (dc *delayConn) run() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		dc.mu.Lock()
		var next *delayed
		if len(dc.q) > 0 {
			next = &dc.q[0]
		}
		dc.mu.Unlock()
		if next != nil {
			if wait := time.Until(next.due); wait > 0 {
				t.Reset(wait)
				select {
				case <-t.C:
				case <-dc.wake:
					continue
				case <-dc.closed:
					return
				}
			}
			dc.mu.Lock()
			p := dc.q[0]
			dc.q = dc.q[1:]
			dc.mu.Unlock()
			dc.UDPConn.WriteToUDPAddrPort(p.b, p.to)
			continue
		}
		select {
		case <-dc.wake:
		case <-dc.closed:
			return
		}
	}
}

func (dc *delayConn) Close() error {
	dc.once.Do(func() { close(dc.closed) })
	return dc.UDPConn.Close()
}
