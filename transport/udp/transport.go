package udp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipv8/go-ipv8/mux"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/security"
	"github.com/ipv8/go-ipv8/transport"
)

// TransportName is the raw-UDP transport's name in logs, Conn.Transport()
// and the CLI.
const TransportName = "udp"

// DefaultAcceptBacklog bounds inbound Conns waiting for Listener.Accept.
const DefaultAcceptBacklog = 128

// TransportConfig tunes a Transport; the zero value is usable.
type TransportConfig struct {
	// Logger receives the transport's few log lines (default slog.Default()).
	Logger *slog.Logger
	// AcceptBacklog bounds inbound Conns waiting for Accept (default
	// DefaultAcceptBacklog); beyond it they are closed.
	AcceptBacklog int
	// Circuits, when set, lets the transport dial relayed addresses
	// (/…/ipv8/p2p/RELAY/p2p-circuit, relayed.go) when the security
	// transport can dial over a path (security.PathDialer).
	Circuits CircuitDialer
}

// Transport is the raw-UDP transport: /ip4|ip6/…/udp/N/ipv8 addresses,
// secure datagram sessions from a security.SecureTransport (Noise), and
// reliable streams over them from a mux.Muxer. It composes both by their
// interfaces (the root package wires security/noise and mux/reliable in),
// and it implements transport.Transport.
//
// One session per peer: the security layer returns the live session when a
// peer is dialled again or dials us at the same time, and the transport
// keeps one Conn per session, so a Dial may return a Conn that Accept also
// yielded (the host keeps one Conn per peer anyway).
//
// Dial returns an authenticated Conn after the handshake's round trip;
// DialEarly returns at once and sends the first streams as 0-RTT data, so
// that the first reply comes one round trip after the dial started (a
// caller that holds a transport.Transport finds it with the interface
// { DialEarly(context.Context, ma.Multiaddr, peer.ID) (transport.Conn, error) }).
type Transport struct {
	local peer.ID
	port  transport.Port
	sec   security.SecureTransport
	mx    mux.Muxer
	laddr ma.Multiaddr
	log   *slog.Logger

	circuits CircuitDialer // nil: no relayed addresses

	cancel context.CancelFunc // stops the accept loop
	loop   chan struct{}      // closed when the accept loop returns

	mu       sync.Mutex
	closed   bool
	conns    *connTable
	listener *listener
	backlog  int
}

var _ transport.Transport = (*Transport)(nil)

// NewTransport returns the raw-UDP transport of the identity key on port,
// securing sessions with sec and multiplexing them with mx. The transport
// owns sec and mx from then on (Close closes them); port stays its
// owner's. When port is a *Port and sec can take a batch writer (as
// security/noise can), sessions' batched sends go out with the port's
// WriteBatch (sendmmsg on Linux).
func NewTransport(key *peer.PrivateKey, port transport.Port, sec security.SecureTransport, mx mux.Muxer, cfg TransportConfig) (*Transport, error) {
	if key == nil || port == nil || sec == nil || mx == nil {
		return nil, errors.New("udp: NewTransport needs a key, a port, a security transport and a muxer")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AcceptBacklog <= 0 {
		cfg.AcceptBacklog = DefaultAcceptBacklog
	}
	laddr, err := transport.FromAddrPort(port.LocalAddr(), "/ipv8")
	if err != nil {
		return nil, fmt.Errorf("udp: local address: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		local:   key.ID(),
		port:    port,
		sec:     sec,
		mx:      mx,
		laddr:   laddr,
		log:     cfg.Logger.With("transport", TransportName),
		cancel:  cancel,
		loop:    make(chan struct{}),
		conns:   newConnTable(),
		backlog: cfg.AcceptBacklog,

		circuits: cfg.Circuits,
	}
	if p, ok := port.(*Port); ok {
		if bs, ok := sec.(batchWriterSetter); ok {
			bs.SetBatchWriter(newSessionBatchWriter(p).write)
		}
	}
	go t.acceptLoop(ctx)
	return t, nil
}

// batchWriterSetter is the optional interface of a security transport that
// can send sessions' batches with one system call.
type batchWriterSetter interface {
	SetBatchWriter(w func(pkts [][]byte, to netip.AddrPort) (int, error))
}

// Name returns "udp".
func (t *Transport) Name() string { return TransportName }

// LocalPeer is the identity the transport authenticates as.
func (t *Transport) LocalPeer() peer.ID { return t.local }

// CanDial reports whether raddr is /ip4|ip6/…/udp/N/ipv8 (without /p2p/),
// or, with a CircuitDialer, a relayed address
// /ip4|ip6/…/udp/N/ipv8/p2p/RELAY/p2p-circuit.
func (t *Transport) CanDial(raddr ma.Multiaddr) bool {
	if IsCircuitAddr(raddr) {
		return t.canDialCircuit(raddr)
	}
	_, err := dialAddr(raddr)
	return err == nil
}

// dialAddr returns the UDP address of a /ip4|ip6/…/udp/N/ipv8 multiaddr.
func dialAddr(raddr ma.Multiaddr) (netip.AddrPort, error) {
	return transport.DialAddrPort(raddr, peer.P_IPV8, "/ip4|ip6/…/udp/N/ipv8")
}

// Dial opens a Conn to p at raddr: a Noise IK handshake (one round trip)
// and a mux connection over the session, which needs no handshake of its
// own. A relayed address (relayed.go) is dialled through a circuit. With p empty the handshake is XX and the Conn is with whoever
// answers. A live session with p is reused. The remote must prove that it
// holds p's key, or Dial fails with an error wrapping
// transport.ErrWrongPeer (and security.ErrWrongPeer).
func (t *Transport) Dial(ctx context.Context, raddr ma.Multiaddr, p peer.ID) (transport.Conn, error) {
	if t.isClosed() {
		return nil, transport.ErrTransportClosed
	}
	if p != "" {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("udp: dial: %w", err)
		}
	}
	if IsCircuitAddr(raddr) {
		return t.dialCircuit(ctx, raddr, p) // relayed.go
	}
	ap, err := dialAddr(raddr)
	if err != nil {
		return nil, err
	}
	sess, err := t.sec.Dial(ctx, ap, p, nil)
	if err != nil {
		err = dialErr(err)
		t.log.Debug("dial failed", "peer", p, "addr", raddr, "err", err)
		return nil, err
	}
	if p != "" && sess.RemotePeer() != p { // the security layer checked it; defence in depth
		sess.Close()
		return nil, fmt.Errorf("%w: dialled %s, the remote is %s", transport.ErrWrongPeer, p, sess.RemotePeer())
	}
	c, _, err := t.connFor(sess, nil)
	return c, err
}

// DialEarly opens a Conn to p at raddr without waiting for the handshake
// (QUIC's DialEarly): it returns at once, and the streams and datagrams the
// caller sends before the handshake completes go out as 0-RTT data right
// behind the Noise IK initiation, so that a request written at once reaches
// the peer with the handshake and its reply can come back within one round
// trip. The Conn's remote is not authenticated when DialEarly returns: if
// the handshake fails (the remote is not p, or does not answer), the Conn
// is closed with a *transport.ConnError that says why, and whatever was
// sent went nowhere but to the address dialled, sealed to p's key (only p
// can read it). 0-RTT data may be replayed to p (docs/protocol/noise.md,
// "0-RTT data"): open streams early only for requests that are safe to
// receive twice. The handshake's deadline is ctx's, at most the security
// transport's handshake timeout; cancelling ctx after DialEarly returned
// does not stop it. Without a peer ID, or with a security transport that
// cannot dial early, DialEarly is Dial.
func (t *Transport) DialEarly(ctx context.Context, raddr ma.Multiaddr, p peer.ID) (transport.Conn, error) {
	ed, ok := t.sec.(security.EarlyDialer)
	if !ok || p == "" || IsCircuitAddr(raddr) { // no 0-RTT over a relay
		return t.Dial(ctx, raddr, p)
	}
	if t.isClosed() {
		return nil, transport.ErrTransportClosed
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("udp: dial: %w", err)
	}
	ap, err := dialAddr(raddr)
	if err != nil {
		return nil, err
	}
	d := &earlyDial{t: t}
	sess, err := ed.DialEarly(ctx, ap, p, d.established)
	if err != nil {
		err = dialErr(err)
		t.log.Debug("early dial failed", "peer", p, "addr", raddr, "err", err)
		return nil, err
	}
	d.ws = &earlySession{EarlySession: sess}
	c, _, err := t.connFor(sess, d.ws)
	if err != nil {
		return nil, err
	}
	d.setConn(c)
	return c, nil
}

// dialErr maps the security layer's errors to the transport's sentinels,
// keeping both matchable with errors.Is.
func dialErr(err error) error {
	switch {
	case errors.Is(err, security.ErrWrongPeer):
		return fmt.Errorf("%w: %w", transport.ErrWrongPeer, err)
	case errors.Is(err, security.ErrHandshakeTimeout):
		return fmt.Errorf("%w: %w", transport.ErrHandshakeTimeout, err)
	}
	return fmt.Errorf("udp: dial: %w", err)
}

// connFor returns the Conn of a session, making it on first sight. created
// tells whether this call made it. A Conn made here runs over muxSess when
// it is set (a session from DialEarly, wrapped), over sess otherwise; the
// table knows it by sess either way, so a later Dial finds it.
func (t *Transport) connFor(sess, muxSess security.Session) (transport.Conn, bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		sess.Close()
		return nil, false, transport.ErrTransportClosed
	}
	if c := t.conns.get(sess); c != nil {
		return c, false, nil
	}
	// Stream IDs are split by which side has the lower peer ID, not by who
	// dialled: with simultaneous opens and reused sessions both sides may
	// have dialled, and they must still pick opposite halves.
	if muxSess == nil {
		muxSess = sess
	}
	c, err := t.mx.NewConn(muxSess, t.local < sess.RemotePeer())
	if err != nil {
		sess.Close()
		return nil, false, fmt.Errorf("udp: %w", err)
	}
	t.conns.add(sess, c)
	return c, true, nil
}

// acceptLoop takes the sessions remotes opened and hands their Conns to
// the listener. It is the transport's one goroutine.
func (t *Transport) acceptLoop(ctx context.Context) {
	defer close(t.loop)
	for {
		sess, err := t.sec.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			t.log.Debug("accept stopped", "err", err)
			return
		}
		t.inbound(sess)
	}
}

// inbound makes the Conn of a session the remote opened and hands it to
// the listener.
func (t *Transport) inbound(sess security.Session) {
	c, created, err := t.connFor(sess, nil)
	if err != nil || !created {
		return // refused, or a Dial already has its Conn
	}
	t.mu.Lock()
	l := t.listener
	t.mu.Unlock()
	if l == nil || !l.offer(c) {
		// Nobody listens (as with QUIC, inbound connections are
		// refused), or the backlog is full.
		c.CloseWithError(transport.CodeResourceLimit, "not accepting connections")
	}
}

// Listen starts accepting inbound Conns. A transport has one listener at
// a time.
func (t *Transport) Listen() (transport.Listener, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, transport.ErrTransportClosed
	}
	if t.listener != nil {
		return nil, errors.New("udp: already listening")
	}
	t.listener = newListener(t, t.backlog)
	return t.listener, nil
}

func (t *Transport) removeListener(l *listener) {
	t.mu.Lock()
	if t.listener == l {
		t.listener = nil
	}
	t.mu.Unlock()
}

// Close closes every Conn and the listener, then the muxer and the
// security transport. The port stays open.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	l := t.listener
	conns := t.conns.all()
	t.mu.Unlock()
	if l != nil {
		l.Close()
	}
	for _, c := range conns {
		c.CloseWithError(transport.CodeConnClosing, "transport closed")
	}
	t.cancel()
	errs := []error{t.mx.Close(), t.sec.Close()}
	<-t.loop
	return errors.Join(errs...)
}

func (t *Transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}
