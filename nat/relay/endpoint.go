package relay

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipv8/go-ipv8/internal/clock"
	"github.com/ipv8/go-ipv8/nat"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
)

// Limits bound what a relay gives away (circuit relay v2's model: a
// reservation per peer, circuits limited in number, time and bytes). Zero
// fields take the defaults named in their comments; each limit that is hit
// is reported to the client by a code naming it.
type Limits struct {
	// ReservationTTL is how long a reservation lasts unless refreshed
	// (default 1 h; clients refresh at three quarters of it).
	ReservationTTL time.Duration
	// MaxReservations bounds reservations in total (default 1024) and
	// MaxReservationsPerIP those from one IP address (default 8).
	MaxReservations, MaxReservationsPerIP int
	// MaxCircuits bounds open circuits (default 1024); MaxCircuitsPerPeer
	// those a peer takes part in, as initiator or target (default 16);
	// MaxCircuitsPerIP those opened from one IP address (default 16).
	MaxCircuits, MaxCircuitsPerPeer, MaxCircuitsPerIP int
	// CircuitDuration and CircuitBytes end a circuit (default 1 h and
	// 1 GiB; both directions count). CircuitIdle ends one that carried
	// nothing that long (default 2 min; the ends' keepalives count).
	CircuitDuration time.Duration
	CircuitBytes    uint64
	CircuitIdle     time.Duration
	// AcceptTimeout is how long the target has to accept (default 5 s).
	AcceptTimeout time.Duration
	// SignaturesPerSecond bounds the signed requests (RESERVE, CONNECT)
	// verified per second (default 2000).
	SignaturesPerSecond int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defd(&l.ReservationTTL, time.Hour)
	def(&l.MaxReservations, 1024)
	def(&l.MaxReservationsPerIP, 8)
	def(&l.MaxCircuits, 1024)
	def(&l.MaxCircuitsPerPeer, 16)
	def(&l.MaxCircuitsPerIP, 16)
	defd(&l.CircuitDuration, time.Hour)
	if l.CircuitBytes == 0 {
		l.CircuitBytes = 1 << 30
	}
	defd(&l.CircuitIdle, 2*time.Minute)
	defd(&l.AcceptTimeout, 5*time.Second)
	def(&l.SignaturesPerSecond, 2000)
	return l
}

// Config sets up an Endpoint. The zero value is a client only.
type Config struct {
	// Serve makes the endpoint relay for others under Limits.
	Serve  bool
	Limits Limits
	// Keepalive is how often a client sends to a relay it holds a
	// reservation or circuit at when it sent nothing else, so that its
	// NAT's mapping towards the relay survives: nat.KeepaliveInterval of
	// the measured mapping lifetime (default nat.DefaultKeepalive).
	Keepalive time.Duration
	// RequestTimeout bounds a request to a relay when the context has no
	// earlier deadline (default 5 s); requests are retransmitted from
	// 250 ms on, doubling.
	RequestTimeout time.Duration
	// AcceptBacklog bounds circuits waiting for Accept (default 64).
	AcceptBacklog int
	Clock         clock.Clock // default clock.Real
	Logger        *slog.Logger
	Rand          io.Reader // default crypto/rand
}

func (c Config) withDefaults() Config {
	c.Limits = c.Limits.withDefaults()
	if c.Keepalive <= 0 {
		c.Keepalive = nat.DefaultKeepalive
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.AcceptBacklog <= 0 {
		c.AcceptBacklog = 64
	}
	if c.Clock == nil {
		c.Clock = clock.Real
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return c
}

// Endpoint is the relay protocol on a host's port: a client that reserves
// slots at relays, opens circuits through them and accepts circuits opened
// to it, and (with Config.Serve) a relay for others. It owns the port's
// TypeRelay handler.
type Endpoint struct {
	port transport.Port
	key  *peer.PrivateKey
	id   peer.ID
	cfg  Config
	clk  clock.Clock
	log  *slog.Logger

	srv *server // nil unless Config.Serve
	cl  client

	bufs sync.Pool // *[]byte for DATA packets

	rngMu sync.Mutex

	tickMu sync.Mutex
	ticker clock.Timer
	closed atomic.Bool
	done   chan struct{}
}

// tick is the period of the endpoint's housekeeping (expiries, keepalives).
const tick = time.Second

// New starts the relay protocol on port for the identity key.
func New(port transport.Port, key *peer.PrivateKey, cfg Config) (*Endpoint, error) {
	if port == nil || key == nil {
		return nil, errors.New("relay: New needs a port and a key")
	}
	cfg = cfg.withDefaults()
	e := &Endpoint{
		port: port, key: key, id: key.ID(), cfg: cfg, clk: cfg.Clock,
		log:  cfg.Logger.With("component", "relay", "peer", key.ID().ShortString()),
		done: make(chan struct{}),
	}
	e.bufs.New = func() any { b := make([]byte, 0, 2048); return &b }
	e.cl.init(e)
	if cfg.Serve {
		e.srv = newServer(e)
	}
	port.HandleType(transport.TypeRelay, e.handle)
	e.tickMu.Lock()
	e.ticker = e.clk.AfterFunc(tick, e.onTick)
	e.tickMu.Unlock()
	return e, nil
}

// LocalPeer is the endpoint's identity.
func (e *Endpoint) LocalPeer() peer.ID { return e.id }

// Close stops the endpoint: circuits close (telling the relay and, when
// serving, both ends), reservations are dropped, waiting calls fail with
// ErrClosed.
func (e *Endpoint) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	close(e.done)
	e.tickMu.Lock()
	e.ticker.Stop()
	e.tickMu.Unlock()
	if e.srv != nil {
		e.srv.shutdown()
	}
	e.cl.shutdown()
	e.port.HandleType(transport.TypeRelay, nil)
	return nil
}

func (e *Endpoint) onTick() {
	if e.closed.Load() {
		return
	}
	now := e.clk.Now()
	if e.srv != nil {
		e.srv.housekeeping(now)
	}
	e.cl.housekeeping(now)
	e.tickMu.Lock()
	if !e.closed.Load() {
		e.ticker = e.clk.AfterFunc(tick, e.onTick)
	}
	e.tickMu.Unlock()
}

func (e *Endpoint) nonce() uint64 {
	var b [8]byte
	e.rngMu.Lock()
	io.ReadFull(e.cfg.Rand, b[:])
	e.rngMu.Unlock()
	return binary.BigEndian.Uint64(b[:])
}

// send encodes m and sends it to addr.
func (e *Endpoint) send(m *Msg, to netip.AddrPort) {
	bp := e.bufs.Get().(*[]byte)
	b := m.Append((*bp)[:0])
	_ = e.port.WriteTo(b, to)
	*bp = b
	e.bufs.Put(bp)
}

// handle runs on the port's read goroutine for every TypeRelay packet.
func (e *Endpoint) handle(pkt []byte, from netip.AddrPort) {
	if len(pkt) < HeaderLen || e.closed.Load() {
		return
	}
	k := Kind(pkt[1])
	if k == KindData {
		if e.srv != nil && e.srv.data(pkt, from) {
			return
		}
		e.cl.data(pkt, from)
		return
	}
	m, err := ParseMsg(pkt)
	if err != nil {
		if e.srv != nil {
			e.srv.stats.malformed.Add(1)
		}
		e.log.Debug("relay: dropped packet", "from", from, "err", err)
		return
	}
	switch k {
	case KindHello, KindReserve, KindConnect, KindAccept, KindPing:
		if e.srv != nil {
			e.srv.handle(&m, from)
		}
	case KindClose:
		if e.srv != nil && e.srv.closeFrom(&m, from) {
			return
		}
		e.cl.handle(&m, from)
	default:
		e.cl.handle(&m, from)
	}
}

// Stats are a relay's counters (zero for a client-only endpoint).
type Stats struct {
	Reservations     int    // held now
	Circuits         int    // open now (including those waiting for accept)
	CircuitsOpened   uint64 // ever accepted by their target
	BytesRelayed     uint64 // datagram bytes forwarded (headers excluded)
	PacketsRelayed   uint64
	Refused          uint64 // requests answered with an ERROR
	DroppedUnknown   uint64 // DATA for no circuit or from an address not its end
	DroppedMalformed uint64
	ClosedAtLimit    uint64 // circuits closed at their duration, data or idle limit
}

// Stats returns the relay's counters.
func (e *Endpoint) Stats() Stats {
	if e.srv == nil {
		return Stats{}
	}
	return e.srv.snapshot()
}
