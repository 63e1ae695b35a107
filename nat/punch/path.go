package punch

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipv8/go-ipv8/transport"
)

// Path is a punched direct path to a peer: the peer's address and the
// socket the punch went through — the host's port, or (after a birthday
// punch won by the hard side) one of the extra sockets, which the path
// then owns.
//
// It is a path for a security/noise session (WritePacket, Addr, Kind,
// Overhead). On the port, a session does better with its own direct path
// to Addr (the Noise transport's DirectPath); on an extra socket, the
// packets that arrive are not the port's, so the path hands them to its
// handler (SetHandler), which gives Noise packets to the Noise transport's
// HandleVia with the path.
//
// The Puncher answers the peer's PINGs on the path and pings it when it
// carried nothing for Config.Keepalive, so that both NATs keep the
// mappings while the path is idle.
type Path struct {
	p    *Puncher
	id   ID
	s    *sock
	peer netip.AddrPort

	handler   atomic.Pointer[func([]byte)]
	earlyMu   sync.Mutex
	early     [][]byte     // packets that came before the handler (a handshake racing the Result)
	lastSent  atomic.Int64 // unix nanoseconds
	lastHeard atomic.Int64
	closed    atomic.Bool
}

func (p *Puncher) newPath(id ID, s *sock, peer netip.AddrPort) *Path {
	pa := &Path{p: p, id: id, s: s, peer: peer}
	now := p.clk.Now().UnixNano()
	pa.lastSent.Store(now)
	pa.lastHeard.Store(now)
	if s.conn != nil {
		s.owner.Store(pa)
	}
	p.mu.Lock()
	p.paths[id] = pa
	p.mu.Unlock()
	return pa
}

// WritePacket sends pkt to the peer from the path's socket.
func (pa *Path) WritePacket(pkt []byte) error {
	pa.lastSent.Store(pa.p.clk.Now().UnixNano())
	return pa.s.write(pkt, pa.peer)
}

// Addr is the peer's address on the path.
func (pa *Path) Addr() netip.AddrPort { return pa.peer }

// Kind is transport.PathDirect.
func (pa *Path) Kind() transport.PathKind { return transport.PathDirect }

// Overhead is 0: nothing is added to the packets.
func (pa *Path) Overhead() int { return 0 }

// OnPort reports whether the path leaves from the host's port (rather than
// an extra socket of a birthday punch).
func (pa *Path) OnPort() bool { return pa.s.conn == nil }

// LocalAddr is the address of the path's socket.
func (pa *Path) LocalAddr() netip.AddrPort {
	if pa.s.conn != nil {
		if ap, err := netip.ParseAddrPort(pa.s.conn.LocalAddr().String()); err == nil {
			return ap
		}
	}
	return pa.p.port.LocalAddr()
}

// ID is the attempt that punched the path.
func (pa *Path) ID() ID { return pa.id }

// SetHandler installs the function that gets the packets (other than
// punch packets) that arrive on an extra socket from the peer; those that
// came before are handed to it first. Packets on the port go to the
// port's handlers as usual.
func (pa *Path) SetHandler(f func(pkt []byte)) {
	pa.earlyMu.Lock()
	defer pa.earlyMu.Unlock()
	pa.handler.Store(&f)
	for _, p := range pa.early {
		f(p)
	}
	pa.early = nil
}

// maxEarly bounds the packets kept for a path without a handler.
const maxEarly = 16

func (pa *Path) deliver(pkt []byte) {
	pa.heard()
	if h := pa.handler.Load(); h != nil {
		(*h)(pkt)
		return
	}
	pa.earlyMu.Lock()
	if h := pa.handler.Load(); h != nil {
		pa.earlyMu.Unlock()
		(*h)(pkt)
		return
	}
	if len(pa.early) < maxEarly {
		pa.early = append(pa.early, append([]byte(nil), pkt...))
	}
	pa.earlyMu.Unlock()
}

// Ping measures the path's round-trip time (a PING the peer's Puncher
// answers).
func (pa *Path) Ping(ctx context.Context) (time.Duration, error) {
	if pa.closed.Load() {
		return 0, ErrClosed
	}
	return pa.p.ping(ctx, pa.id, func(b []byte) error {
		pa.lastSent.Store(pa.p.clk.Now().UnixNano())
		return pa.s.write(b, pa.peer)
	})
}

// LastHeard is when a punch packet (or, on an extra socket, any packet)
// last came from the peer over the path.
func (pa *Path) LastHeard() time.Time { return time.Unix(0, pa.lastHeard.Load()) }

func (pa *Path) heard()                { pa.lastHeard.Store(pa.p.clk.Now().UnixNano()) }
func (pa *Path) lastSentAt() time.Time { return time.Unix(0, pa.lastSent.Load()) }

// keepalive sends a PING without waiting for the answer.
func (pa *Path) keepalive() {
	pa.lastSent.Store(pa.p.clk.Now().UnixNano())
	pa.s.write(AppendSeq(nil, KindPing, pa.id, 0), pa.peer)
}

// matches reports whether a packet from addr on socket s came over the path.
func (pa *Path) matches(s *sock, addr netip.AddrPort) bool {
	return addr == pa.peer && s.conn == pa.s.conn
}

// Close forgets the path (no more keepalives or answers) and closes its
// extra socket, if it has one.
func (pa *Path) Close() error {
	if pa.closed.Swap(true) {
		return nil
	}
	p := pa.p
	p.mu.Lock()
	if p.paths[pa.id] == pa {
		delete(p.paths, pa.id)
	}
	p.mu.Unlock()
	if pa.s.conn != nil {
		return pa.s.conn.Close()
	}
	return nil
}
