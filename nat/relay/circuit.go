package relay

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
)

// Circuit is one end of a relayed path to a peer. It is a path for a
// security/noise session (WritePacket, Addr, Kind, Overhead: the session
// seals, the circuit wraps the sealed packet in 8 bytes and sends it to the
// relay, which sees only ciphertext) and hands the datagrams it receives to
// its handler — the host gives Noise packets to the Noise transport's
// HandleVia with the circuit as the path.
type Circuit struct {
	e         *Endpoint
	relay     netip.AddrPort
	id        uint32
	peer      peer.ID
	peerAddr  netip.AddrPort
	limit     Limit
	initiator bool

	handler atomic.Pointer[func([]byte)]
	early   struct {
		sync.Mutex
		pkts [][]byte
	}

	sent, recv atomic.Uint64

	once sync.Once
	done chan struct{}
	err  error
}

// maxEarly bounds datagrams kept for a circuit whose handler is not set
// yet (a Noise initiation that raced the Accept, say).
const maxEarly = 16

func newCircuit(e *Endpoint, relay netip.AddrPort, id uint32, p peer.ID, addr netip.AddrPort, l Limit, initiator bool) *Circuit {
	return &Circuit{e: e, relay: relay, id: id, peer: p, peerAddr: addr, limit: l, initiator: initiator, done: make(chan struct{})}
}

// WritePacket sends one datagram to the peer through the relay. It does
// not keep pkt.
func (c *Circuit) WritePacket(pkt []byte) error {
	select {
	case <-c.done:
		return c.err
	default:
	}
	bp := c.e.bufs.Get().(*[]byte)
	b := AppendDataHeader((*bp)[:0], c.id)
	b = append(b, pkt...)
	err := c.e.port.WriteTo(b, c.relay)
	*bp = b
	c.e.bufs.Put(bp)
	if err == nil {
		c.sent.Add(uint64(len(pkt)))
		c.e.cl.noteSent(c.relay)
	}
	return err
}

// Addr is the relay's address (where the packets go).
func (c *Circuit) Addr() netip.AddrPort { return c.relay }

// Kind is transport.PathRelayed.
func (c *Circuit) Kind() transport.PathKind { return transport.PathRelayed }

// Overhead is the bytes relaying adds to each datagram.
func (c *Circuit) Overhead() int { return DataOverhead }

// ID is the circuit's number at the relay.
func (c *Circuit) ID() uint32 { return c.id }

// Peer is the other end's identity, as the relay authenticated it (its
// signature for an initiator, its reservation for a target).
func (c *Circuit) Peer() peer.ID { return c.peer }

// PeerAddr is the other end's address as the relay sees it: a public
// address worth trying for a direct path.
func (c *Circuit) PeerAddr() netip.AddrPort { return c.peerAddr }

// Initiator reports whether we opened the circuit.
func (c *Circuit) Initiator() bool { return c.initiator }

// Limit is what the relay lets the circuit carry.
func (c *Circuit) Limit() Limit { return c.limit }

// BytesSent and BytesReceived count the datagrams' bytes.
func (c *Circuit) BytesSent() uint64     { return c.sent.Load() }
func (c *Circuit) BytesReceived() uint64 { return c.recv.Load() }

// SetHandler installs the function that gets each datagram the peer sent,
// on the port's read goroutine (it must not block; pkt is valid during the
// call). Datagrams that arrived before are handed to it first.
func (c *Circuit) SetHandler(f func(pkt []byte)) {
	c.early.Lock()
	defer c.early.Unlock()
	c.handler.Store(&f)
	for _, p := range c.early.pkts {
		f(p)
	}
	c.early.pkts = nil
}

func (c *Circuit) deliver(pkt []byte) {
	c.recv.Add(uint64(len(pkt)))
	if h := c.handler.Load(); h != nil {
		(*h)(pkt)
		return
	}
	c.early.Lock()
	if h := c.handler.Load(); h != nil {
		c.early.Unlock()
		(*h)(pkt)
		return
	}
	if len(c.early.pkts) < maxEarly {
		c.early.pkts = append(c.early.pkts, append([]byte(nil), pkt...))
	}
	c.early.Unlock()
}

// Done is closed when the circuit ends; Err says why.
func (c *Circuit) Done() <-chan struct{} { return c.done }

// Err is why the circuit ended (nil while open): a *Error from the relay
// (errors.Is ErrLimitReached when a limit closed it), or ErrClosed.
func (c *Circuit) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Close ends the circuit and tells the relay.
func (c *Circuit) Close() error {
	c.end(ErrClosed, true)
	return nil
}

func (c *Circuit) end(err error, notify bool) {
	c.once.Do(func() {
		c.err = err
		close(c.done)
		if notify {
			c.e.send(&Msg{Kind: KindClose, Circuit: c.id}, c.relay)
		}
		c.e.cl.removeCircuit(c)
	})
}
