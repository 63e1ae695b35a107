package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocol"
	"github.com/ipv8/go-ipv8/transport"
)

// Errors a caller may branch on with errors.Is.
var (
	ErrClosed       = errors.New("host: closed")
	ErrNoAddresses  = errors.New("host: no dialable address for peer")
	ErrDialSelf     = errors.New("host: dial to self")
	ErrNoTransports = errors.New("host: no transports")
	ErrNoHandler    = errors.New("host: no handler for protocol")
	// ErrProtocolNotSupported is transport.ErrProtocolNotSupported, so that
	// callers need import only one of the packages.
	ErrProtocolNotSupported = transport.ErrProtocolNotSupported
	ErrMessageTooLarge      = errors.New("host: message too large for one datagram")
)

// StreamHandler serves one inbound stream, on a goroutine of its own. The
// handler owns the stream: it must Close or Reset it.
type StreamHandler = func(transport.Stream)

// MessageHandler gets one datagram message for the protocol it was
// registered for. data is the handler's to keep.
type MessageHandler = func(from peer.ID, data []byte)

// Config is what a Host is built from. The root package ipv8 fills it from
// its defaults table; a zero field means the behaviour its comment gives.
type Config struct {
	// Key is the host's identity (required).
	Key *peer.PrivateKey
	// Transports dial and accept Conns (at least one). The host closes them.
	Transports []transport.Transport
	// Port is the host's UDP port, for subsystems that register packet
	// handlers on it (STUN, communities). Optional; not closed by the host
	// (see Closers).
	Port transport.Port
	// Peerstore; nil: a new one of 10 000 peers.
	Peerstore *Peerstore
	// AgentVersion is told to peers by identify ("go-ipv8" when empty).
	AgentVersion string
	// DialTimeout bounds one Connect (no bound beyond the context when 0).
	DialTimeout time.Duration
	// DialStagger is the delay between dialling successive addresses of a
	// peer (happy eyeballs); 0 dials them one after another.
	DialStagger time.Duration
	// Logger; nil: slog.Default().
	Logger *slog.Logger
	// Closers run last on Close, in order (the port, the data directory's
	// lock...).
	Closers []func() error
	// DisableIdentify stops the host from running identify on new Conns.
	DisableIdentify bool
	// NAT, when set, gives the host relayed addresses and moves relayed
	// Conns to direct paths (nat.go).
	NAT NATTraversal
}

// Host reaches peers by public key and serves registered protocols.
type Host struct {
	key        *peer.PrivateKey
	id         peer.ID
	transports []transport.Transport
	listeners  []transport.Listener
	port       transport.Port
	ps         *Peerstore
	cfg        Config
	log        *slog.Logger
	bus        eventBus

	ctx    context.Context // cancelled on Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	conns     map[peer.ID]*connEntry // the one live Conn per peer
	draining  map[*connEntry]struct{}
	dials     map[peer.ID]*dialCall
	handlers  map[protocol.ID]StreamHandler
	msgs      map[protocol.ID]MessageHandler
	observed  observedAddrs
	lastAddrs []ma.Multiaddr
}

// New builds a Host over the given transports and starts listening on
// each of them.
func New(cfg Config) (*Host, error) {
	if cfg.Key == nil {
		return nil, errors.New("host: Config.Key is required")
	}
	if len(cfg.Transports) == 0 {
		return nil, ErrNoTransports
	}
	if cfg.Peerstore == nil {
		cfg.Peerstore = NewPeerstore(0)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AgentVersion == "" {
		cfg.AgentVersion = "go-ipv8"
	}
	h := &Host{
		key:        cfg.Key,
		id:         cfg.Key.ID(),
		transports: cfg.Transports,
		port:       cfg.Port,
		ps:         cfg.Peerstore,
		cfg:        cfg,
		log:        cfg.Logger.With("host", cfg.Key.ID().ShortString()),
		conns:      make(map[peer.ID]*connEntry),
		draining:   make(map[*connEntry]struct{}),
		dials:      make(map[peer.ID]*dialCall),
		handlers:   make(map[protocol.ID]StreamHandler),
		msgs:       make(map[protocol.ID]MessageHandler),
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.ps.SetPublicKey(h.id, cfg.Key.Public())
	for _, t := range cfg.Transports {
		l, err := t.Listen()
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("host: listening on %s: %w", t.Name(), err)
		}
		h.listeners = append(h.listeners, l)
		h.wg.Add(1)
		go h.acceptLoop(l)
	}
	if !cfg.DisableIdentify {
		h.registerIdentify()
	}
	h.lastAddrs = h.Addrs()
	if cfg.NAT != nil {
		cfg.NAT.Start(h.checkAddrsChanged)
	}
	return h, nil
}

// ID is the host's peer ID.
func (h *Host) ID() peer.ID { return h.id }

// Key is the host's identity key.
func (h *Host) Key() *peer.PrivateKey { return h.key }

// Peerstore is what the host knows of other peers.
func (h *Host) Peerstore() *Peerstore { return h.ps }

// Port is the host's UDP port (nil when the host was built without one).
func (h *Host) Port() transport.Port { return h.port }

// Logger is the host's logger.
func (h *Host) Logger() *slog.Logger { return h.log }

// AddrInfo is the host's ID with its addresses, what a peer needs to dial it.
func (h *Host) AddrInfo() peer.AddrInfo { return peer.AddrInfo{ID: h.id, Addrs: h.Addrs()} }

// Subscribe returns a subscription to the host's events with a buffer of
// the given size (64 when 0). Close it when done.
func (h *Host) Subscribe(buffer int) *Subscription { return h.bus.subscribe(buffer) }

// SetStreamHandler serves inbound streams of protocol p with f, replacing
// any earlier handler.
func (h *Host) SetStreamHandler(p protocol.ID, f StreamHandler) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.handlers[p] = f
}

// RemoveStreamHandler stops serving p; new streams for it are reset with
// transport.CodeProtocolNotSupported.
func (h *Host) RemoveStreamHandler(p protocol.ID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.handlers, p)
}

// Protocols lists the protocols the host serves, streams and messages.
func (h *Host) Protocols() []protocol.ID {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]protocol.ID, 0, len(h.handlers)+len(h.msgs))
	for p := range h.handlers {
		out = append(out, p)
	}
	for p := range h.msgs {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func (h *Host) handler(p protocol.ID) StreamHandler {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.handlers[p]
}

// Close closes every Conn, listener and transport, then runs the Closers.
// It is safe to call more than once.
func (h *Host) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	entries := make([]*connEntry, 0, len(h.conns)+len(h.draining))
	for _, e := range h.conns {
		entries = append(entries, e)
	}
	for e := range h.draining {
		entries = append(entries, e)
	}
	h.mu.Unlock()

	h.cancel()
	var errs []error
	for _, e := range entries {
		e.conn.CloseWithError(transport.CodeConnClosing, "host closing")
	}
	for _, l := range h.listeners {
		if err := l.Close(); err != nil && !errors.Is(err, transport.ErrTransportClosed) {
			errs = append(errs, err)
		}
	}
	for _, t := range h.transports {
		if err := t.Close(); err != nil && !errors.Is(err, transport.ErrTransportClosed) {
			errs = append(errs, err)
		}
	}
	h.wg.Wait()
	for _, c := range h.cfg.Closers {
		if err := c(); err != nil {
			errs = append(errs, err)
		}
	}
	h.bus.close()
	return errors.Join(errs...)
}

func (h *Host) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}
