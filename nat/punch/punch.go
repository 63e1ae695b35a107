package punch

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipv8/go-ipv8/internal/clock"
	"github.com/ipv8/go-ipv8/nat"
	"github.com/ipv8/go-ipv8/transport"
)

// Channel carries coordination messages to the peer: a relay circuit
// (relay.Circuit has this method), or any path both peers reach. The
// peer's messages come back through Puncher.HandleSignal.
type Channel interface {
	WritePacket(msg []byte) error
}

// Config tunes a Puncher; the zero value works (with the real clock and
// birthday sockets from net.ListenUDP).
type Config struct {
	// Self describes this host for an attempt: its candidate addresses
	// (public ones first) and NAT traits. It is called at the start of
	// each attempt, so that a sequential NAT's last port is fresh
	// (Observe does this with STUN). Required.
	Self func(ctx context.Context) (Info, error)
	// ListenAux opens n extra UDP sockets for birthday punching (default:
	// net.ListenUDP on the unspecified IPv4 address).
	ListenAux func(n int) ([]transport.PacketConn, error)
	// Budget bounds each attempt.
	Budget Budget
	// MaxAttempts bounds attempts running at once, ours and the peers'
	// (default 8); beyond it new ones fail with ErrBusy.
	MaxAttempts int
	// Keepalive is how often a punched path that carried nothing else is
	// pinged so that the NATs keep its mappings: nat.KeepaliveInterval of
	// the measured mapping lifetime (default nat.DefaultKeepalive).
	Keepalive time.Duration
	// CoordinationTimeout bounds the CONNECT/REPLY exchange (default 5 s).
	CoordinationTimeout time.Duration
	Clock               clock.Clock
	Logger              *slog.Logger
	Rand                io.Reader
}

func (c Config) withDefaults() Config {
	c.Budget = c.Budget.withDefaults()
	if c.ListenAux == nil {
		c.ListenAux = ListenUDP4
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.Keepalive <= 0 {
		c.Keepalive = nat.DefaultKeepalive
	}
	if c.CoordinationTimeout <= 0 {
		c.CoordinationTimeout = 5 * time.Second
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

// ListenUDP4 opens n kernel UDP sockets on ephemeral IPv4 ports (the
// default ListenAux); if one fails, those already open are closed.
func ListenUDP4(n int) ([]transport.PacketConn, error) {
	out := make([]transport.PacketConn, 0, n)
	for range n {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{})
		if err != nil {
			for _, c := range out {
				c.Close()
			}
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Errors an attempt may end with, usable with errors.Is.
var (
	// ErrNoPath: the punching ran its time (or the plan was None) and no
	// probe was answered: use the relay.
	ErrNoPath = errors.New("punch: no direct path found")
	// ErrBusy: Config.MaxAttempts attempts are running.
	ErrBusy = errors.New("punch: too many attempts at once (Config.MaxAttempts)")
	// ErrTimeout: the peer did not answer the coordination.
	ErrTimeout = errors.New("punch: peer did not answer the coordination (timeout)")
	// ErrCanceled: the peer gave the attempt up.
	ErrCanceled = errors.New("punch: canceled by the peer")
	// ErrClosed: the Puncher is closed.
	ErrClosed = errors.New("punch: closed")
)

// Puncher runs hole punching on the host's port: it owns the port's
// TypePunch handler, runs the attempts this host starts (Initiate) and
// those peers start through a channel (HandleSignal), and keeps the paths
// they punched alive.
type Puncher struct {
	port transport.Port
	cfg  Config
	clk  clock.Clock
	log  *slog.Logger

	mu       sync.Mutex
	attempts map[ID]*attempt
	paths    map[ID]*Path
	pings    map[pingKey]chan time.Time // waiting PINGs
	results  chan *Result               // responders' results
	closed   bool
	rngMu    sync.Mutex

	ticker clock.Timer
	tickMu sync.Mutex
	done   chan struct{}

	stats struct {
		attempts, succeeded, probes, dropped atomic.Uint64
	}
}

type pingKey struct {
	id  ID
	seq uint32
}

// New starts hole punching on port.
func New(port transport.Port, cfg Config) (*Puncher, error) {
	if port == nil || cfg.Self == nil {
		return nil, errors.New("punch: New needs a port and Config.Self")
	}
	cfg = cfg.withDefaults()
	p := &Puncher{
		port: port, cfg: cfg, clk: cfg.Clock, log: cfg.Logger.With("component", "punch"),
		attempts: map[ID]*attempt{}, paths: map[ID]*Path{}, pings: map[pingKey]chan time.Time{},
		results: make(chan *Result, 16), done: make(chan struct{}),
	}
	port.HandleType(transport.TypePunch, func(pkt []byte, from netip.AddrPort) { p.receive(pkt, from, nil) })
	p.tickMu.Lock()
	p.ticker = p.clk.AfterFunc(keepaliveTick, p.onTick)
	p.tickMu.Unlock()
	return p, nil
}

// Close stops the Puncher: attempts fail with ErrClosed and punched paths
// close.
func (p *Puncher) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	paths := make([]*Path, 0, len(p.paths))
	for _, pa := range p.paths {
		paths = append(paths, pa)
	}
	p.mu.Unlock()
	p.tickMu.Lock()
	p.ticker.Stop()
	p.tickMu.Unlock()
	p.port.HandleType(transport.TypePunch, nil)
	for _, pa := range paths {
		pa.Close()
	}
	return nil
}

// Stats are a Puncher's counters.
type Stats struct {
	Attempts, Succeeded uint64 // attempts run (both roles) and those that punched
	Probes              uint64 // PROBEs sent
	Dropped             uint64 // punch packets for no attempt or path, or malformed
}

func (p *Puncher) Stats() Stats {
	return Stats{p.stats.attempts.Load(), p.stats.succeeded.Load(), p.stats.probes.Load(), p.stats.dropped.Load()}
}

func (p *Puncher) newID() (id ID) {
	p.rngMu.Lock()
	io.ReadFull(p.cfg.Rand, id[:])
	p.rngMu.Unlock()
	return id
}

// sock is where a punch packet came in or goes out: the port, or one of a
// birthday attempt's extra sockets.
type sock struct {
	port  transport.Port
	conn  transport.PacketConn
	owner atomic.Pointer[Path] // an extra socket's path, once punched
}

func (s *sock) path() *Path { return s.owner.Load() }

func (s *sock) write(b []byte, to netip.AddrPort) error {
	if s.conn != nil {
		_, err := s.conn.WriteToUDPAddrPort(b, to)
		return err
	}
	return s.port.WriteTo(b, to)
}

// receive handles a punch packet that arrived straight from the network,
// on the port (s nil) or an extra socket.
func (p *Puncher) receive(pkt []byte, from netip.AddrPort, s *sock) {
	if s == nil {
		s = &sock{port: p.port}
	}
	pk, err := Parse(pkt)
	if err != nil {
		p.stats.dropped.Add(1)
		return
	}
	p.mu.Lock()
	a := p.attempts[pk.ID]
	pa := p.paths[pk.ID]
	p.mu.Unlock()
	switch pk.Kind {
	case KindProbe:
		switch {
		case a != nil:
			a.onProbe(s, from, pkt[2], pk.Seq)
		case pa != nil && pa.matches(s, from):
			// A late punch (or a repeated nomination) of a path we hold.
			s.write(AppendSeqFlags(nil, KindAck, pk.ID, pk.Seq, pkt[2]), from)
		default:
			p.stats.dropped.Add(1) // nobody asked: no answer
		}
	case KindAck:
		if a != nil {
			a.onAck(s, from, pkt[2], pk.Seq)
		}
	case KindPing:
		if pa != nil && pa.matches(s, from) {
			pa.heard()
			s.write(AppendSeq(nil, KindPong, pk.ID, pk.Seq), from)
		} else {
			p.stats.dropped.Add(1)
		}
	case KindPong:
		if pa != nil && pa.matches(s, from) {
			pa.heard()
			p.pong(pk.ID, pk.Seq)
		}
	default:
		p.stats.dropped.Add(1) // coordination comes over a channel
	}
}

// HandleSignal takes a coordination message the peer sent over ch (the
// host routes TypePunch packets that arrive through a relay circuit here).
// A CONNECT starts a responder attempt, whose Result Accept returns.
func (p *Puncher) HandleSignal(msg []byte, ch Channel) {
	pk, err := Parse(msg)
	if err != nil {
		p.stats.dropped.Add(1)
		return
	}
	p.mu.Lock()
	a := p.attempts[pk.ID]
	closed := p.closed
	p.mu.Unlock()
	switch pk.Kind {
	case KindConnect:
		if a != nil {
			a.signal(pk)
			return
		}
		if closed {
			return
		}
		p.respond(pk, ch)
	case KindReply, KindSync, KindCancel:
		if a != nil {
			a.signal(pk)
		}
	case KindPing:
		// An RTT probe of the channel itself: answer over it.
		ch.WritePacket(AppendSeq(nil, KindPong, pk.ID, pk.Seq))
	case KindPong:
		p.pong(pk.ID, pk.Seq)
	default:
		p.stats.dropped.Add(1)
	}
}

func (p *Puncher) pong(id ID, seq uint32) {
	p.mu.Lock()
	ch := p.pings[pingKey{id, seq}]
	p.mu.Unlock()
	if ch != nil {
		select {
		case ch <- p.clk.Now():
		default:
		}
	}
}

// ping sends a PING with a fresh sequence number through send and waits
// for its PONG.
func (p *Puncher) ping(ctx context.Context, id ID, send func([]byte) error) (time.Duration, error) {
	var seqb [4]byte
	p.rngMu.Lock()
	io.ReadFull(p.cfg.Rand, seqb[:])
	p.rngMu.Unlock()
	seq := uint32(seqb[0])<<24 | uint32(seqb[1])<<16 | uint32(seqb[2])<<8 | uint32(seqb[3])
	k := pingKey{id, seq}
	ch := make(chan time.Time, 1)
	p.mu.Lock()
	p.pings[k] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.pings, k)
		p.mu.Unlock()
	}()
	pkt := AppendSeq(nil, KindPing, id, seq)
	start := p.clk.Now()
	rto := 200 * time.Millisecond
	for {
		if err := send(pkt); err != nil {
			return 0, err
		}
		t := time.NewTimer(rto)
		select {
		case at := <-ch:
			t.Stop()
			return at.Sub(start), nil
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-p.done:
			t.Stop()
			return 0, ErrClosed
		case <-t.C:
			rto *= 2
		}
	}
}

// PingChannel measures the round-trip time through a coordination channel
// (the relayed path): the peer's Puncher answers over the same channel.
func (p *Puncher) PingChannel(ctx context.Context, ch Channel) (time.Duration, error) {
	return p.ping(ctx, p.newID(), ch.WritePacket)
}

// Accept waits for the result of the next attempt a peer started with us
// (successful or not).
func (p *Puncher) Accept(ctx context.Context) (*Result, error) {
	select {
	case r := <-p.results:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.done:
		return nil, ErrClosed
	}
}

// register adds an attempt unless MaxAttempts run.
func (p *Puncher) register(a *attempt) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if len(p.attempts) >= p.cfg.MaxAttempts {
		return ErrBusy
	}
	p.attempts[a.id] = a
	p.stats.attempts.Add(1)
	return nil
}

func (p *Puncher) unregister(a *attempt) {
	p.mu.Lock()
	if p.attempts[a.id] == a {
		delete(p.attempts, a.id)
	}
	p.mu.Unlock()
}

// keepaliveTick is how often punched paths are checked for keepalives.
const keepaliveTick = time.Second

func (p *Puncher) onTick() {
	now := p.clk.Now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	var idle []*Path
	for _, pa := range p.paths {
		if now.Sub(pa.lastSentAt()) >= p.cfg.Keepalive {
			idle = append(idle, pa)
		}
	}
	p.mu.Unlock()
	for _, pa := range idle {
		pa.keepalive()
	}
	p.tickMu.Lock()
	select {
	case <-p.done:
	default:
		p.ticker = p.clk.AfterFunc(keepaliveTick, p.onTick)
	}
	p.tickMu.Unlock()
}

// Result is how an attempt ended.
type Result struct {
	ID        ID
	Initiator bool
	Strategy  Strategy
	// Path is the punched direct path (nil when the attempt failed).
	Path *Path
	// Err is why it failed (nil on success); errors.Is ErrNoPath when the
	// punching found nothing.
	Err error
	// Started is when this side started punching (the initiator: half the
	// channel's RTT after sending the SYNC; the responder: on receiving it).
	Started time.Time
	// Elapsed is the time from Started to the path being confirmed: for
	// the initiator the first answered probe, for the responder the
	// initiator's nomination.
	Elapsed time.Duration
	// ChannelRTT is the round-trip time of the coordination channel
	// measured by the CONNECT/REPLY exchange (initiator only).
	ChannelRTT time.Duration
	// ProbeRTT is the round-trip time of the answered probe.
	ProbeRTT time.Duration
	// Probes counts the PROBEs this side sent.
	Probes int
	// Self and Peer are what each side told the other.
	Self, Peer Info
	Plan       Plan
	Channel    Channel
}

func (r *Result) String() string {
	if r.Err != nil {
		return fmt.Sprintf("%s: %v after %d probes", r.Strategy, r.Err, r.Probes)
	}
	return fmt.Sprintf("%s: %s in %s (%d probes)", r.Strategy, r.Path.Addr(), r.Elapsed.Round(time.Millisecond), r.Probes)
}
