package noise

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/ipv8/go-ipv8/internal/clock"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/security"
	"github.com/ipv8/go-ipv8/transport"
)

// Transport runs Noise handshakes and sessions on the host's port. It
// implements security.SecureTransport.
type Transport struct {
	key   *peer.PrivateKey
	id    peer.ID
	port  transport.Port
	cfg   Config
	clock clock.Clock
	epoch time.Time // origin of the stamps sessions keep (stamp.go)
	log   *slog.Logger
	rng   io.Reader

	// primary is the static key of our identity (key.X25519()); secondary
	// is the one derived from our Ed25519 key when that differs (a
	// py-ipv8 identity), so that a peer dialling our ID with IK, which
	// derives the static key from the ID, reaches us too.
	primary   *localStatic
	secondary *localStatic
	edPub     []byte // our Ed25519 key, sent in hellos
	sig       []byte // signature binding the primary static key (nil when native)
	xxMAC1Key [32]byte
	xxSealKey [32]byte
	ssCache   *staticCache
	early     *earlyTable  // responder: 0-RTT keys by the initiator's index
	ephs      ephPool      // an ephemeral key made ahead (keygen.go)
	tickets   *ticketStore // resumption tickets (nil: resumption off)

	cookies *cookieJar
	indexes *indexTable
	timers  *timerHeap
	stats   counters
	bufs    sync.Pool // *sendBuf
	batches sync.Pool // *batchBufs

	batchWriter atomic.Pointer[BatchWriter]

	tsMu   sync.Mutex
	lastTS uint64

	mu       sync.Mutex
	closed   bool
	sessions map[peer.ID]*session
	dials    map[peer.ID]*handshake      // initiator handshakes opening a session to a known peer
	inbound  map[[32]byte]*inbound       // unconfirmed inbound handshakes, by initiator ephemeral
	lastInit *lru.Cache[peer.ID, uint64] // newest initiation timestamp accepted per peer
	acceptQ  chan *session
	done     chan struct{}

	// testHookVerdict, when a test sets it (before traffic), runs on the
	// read goroutine after an IK or resumption answer is made and before
	// its verdict: the moment a dial of our own may start in production.
	testHookVerdict func()
}

var _ security.SecureTransport = (*Transport)(nil)

// New starts a Transport for key on port: it registers for the Noise packet
// types (0x04–0x07) and answers handshakes from then on.
func New(key *peer.PrivateKey, port transport.Port, cfg Config) (*Transport, error) {
	if key == nil || port == nil {
		return nil, errors.New("noise: New needs a key and a port")
	}
	cfg = cfg.withDefaults()
	t := &Transport{
		key:      key,
		id:       key.ID(),
		port:     port,
		cfg:      cfg,
		clock:    cfg.Clock,
		epoch:    cfg.Clock.Now(),
		log:      cfg.Logger.With("component", "noise", "peer", key.ID().ShortString()),
		rng:      cfg.Rand,
		sessions: make(map[peer.ID]*session),
		dials:    make(map[peer.ID]*handshake),
		inbound:  make(map[[32]byte]*inbound),
		acceptQ:  make(chan *session, cfg.AcceptBacklog),
		done:     make(chan struct{}),
	}
	if t.rng == nil {
		t.rng = rand.Reader
	}
	pub := key.Public()
	t.edPub = append([]byte(nil), pub.Ed25519()...)
	t.primary = newLocalStatic(key.X25519(), pub.IsNative())
	if !pub.IsNative() {
		t.sig = staticSignature(key, t.primary.kp.public[:])
		native, err := peer.NewKeyFromSeed(key.Seed())
		if err != nil {
			return nil, fmt.Errorf("noise: deriving the native static key: %w", err)
		}
		t.secondary = newLocalStatic(native.X25519(), true)
	}
	t.xxMAC1Key = labelKey(labelMAC1, []byte(labelXX))
	t.xxSealKey = labelKey(labelCookie, []byte(labelXX))
	t.ssCache = newStaticCache(cfg.StaticCacheSize)
	lc, err := lru.New[peer.ID, uint64](cfg.ReplayCacheSize)
	if err != nil {
		return nil, err
	}
	t.lastInit = lc
	t.cookies = newCookieJar(t.rng, cfg.CookieThreshold)
	t.indexes = newIndexTable(t.rng)
	t.early = newEarlyTable()
	t.tickets = newTicketStore(cfg.TicketCacheSize, cfg.TicketLifetime)
	t.timers = newTimerHeap(t.clock)
	t.bufs.New = func() any { return &sendBuf{b: make([]byte, 0, cfg.MaxPacketSize+64)} }

	t.ephs.refill(t.rng) // the first handshake does not wait for its key
	port.HandleType(transport.TypeNoiseInitiation, t.handleInitiationOrResume)
	port.HandleType(transport.TypeNoiseResponse, t.handleResponse)
	port.HandleType(transport.TypeNoiseCookie, t.handleCookie)
	port.HandleType(transport.TypeNoiseData, t.handleDataOrEarly)
	return t, nil
}

// BatchWriter sends several packets to one address from the port, with
// one system call where the platform has one (sendmmsg). It returns how
// many were sent; on an error the rest were not. It is an alias so that
// transports can install one through an interface without importing this
// package.
type BatchWriter = func(pkts [][]byte, to netip.AddrPort) (int, error)

// SetBatchWriter installs w for sessions' SendBatch on direct paths (nil
// removes it). transport/udp installs its port's WriteBatch here; this
// package does not import it.
func (t *Transport) SetBatchWriter(w BatchWriter) {
	if w == nil {
		t.batchWriter.Store(nil)
		return
	}
	t.batchWriter.Store(&w)
}

// LocalPeer is the identity the Transport authenticates as.
func (t *Transport) LocalPeer() peer.ID { return t.id }

// Stats returns the Transport's counters.
func (t *Transport) Stats() Stats { return t.stats.snapshot() }

// Dial runs a handshake with the peer at addr and returns the session. With
// p set it is Noise IK (early rides in the first flight) and the session
// is with p or Dial fails with an error wrapping security.ErrWrongPeer;
// with p empty it is Noise XX (early rides in the third message). A live
// session with p is returned as it is (early is then sent on it). Dial
// gives up at ctx's deadline or after Config.HandshakeTimeout.
func (t *Transport) Dial(ctx context.Context, addr netip.AddrPort, p peer.ID, early []byte) (security.Session, error) {
	return t.DialPath(ctx, &directPath{port: t.port, addr: addr}, p, early)
}

// DialPath is Dial over a given path (a relay circuit, a punched path). A
// dial to p while another is in flight joins it, and moves its
// retransmissions to path (redirect.go).
func (t *Transport) DialPath(ctx context.Context, path Path, p peer.ID, early []byte) (security.Session, error) {
	if p != "" {
		if err := p.Validate(); err != nil {
			return nil, err
		}
		if p == t.id {
			return nil, errors.New("noise: dialling oneself")
		}
	}
	if len(early) > t.maxEarly(p != "") {
		return nil, fmt.Errorf("%w: %d bytes of early data, at most %d fit", security.ErrTooLarge, len(early), t.maxEarly(p != ""))
	}
	deadline := t.handshakeDeadline(ctx)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	var h *handshake
	if p != "" {
		if s := t.sessions[p]; s != nil && !s.isClosed() {
			t.mu.Unlock()
			return s.sendEarly(early)
		}
		if h = t.dials[p]; h != nil {
			t.mu.Unlock()
			h.redirect(path) // redirect.go
			s, err := h.wait(ctx)
			if err != nil {
				return nil, err
			}
			return s.sendEarly(early)
		}
	}
	var err error
	pattern := PatternXX
	var rs []byte
	var pub *peer.PublicKey
	tk := t.ticketFor(p, path)
	switch {
	case tk != nil:
		pattern, rs = PatternIK, tk.rs[:] // a resumption, below
	case p != "":
		pattern = PatternIK
		var perr error
		if pub, perr = p.PublicKey(); perr != nil {
			t.mu.Unlock()
			return nil, perr
		}
		rs = pub.X25519()
	}
	h, err = t.newInitiator(pattern, p, rs, t.primary, path, nil, early, deadline)
	if err != nil {
		t.mu.Unlock()
		tk.wipe()
		return nil, err
	}
	h.remotePub = pub
	if p != "" {
		t.dials[p] = h
	}
	if tk != nil {
		h.resume(tk)
	}
	t.mu.Unlock()
	if err := h.start(); err != nil {
		h.fail(err)
	}
	s, err := h.wait(ctx)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// maxEarly is the early data that fits the first flight (IK) or the third
// message (XX) of one packet.
func (t *Transport) maxEarly(ik bool) int {
	hello := helloMinLen + 32
	if t.sig != nil {
		hello += peer.SignatureSize
	}
	var n int
	if ik {
		n = initiationHeaderLen + keyLen + keyLen + tagLen + hello + tagLen + 2*macLen
	} else {
		n = responseHeaderLen + keyLen + tagLen + hello + tagLen
	}
	if m := t.cfg.MaxPacketSize - n; m > 0 {
		return m
	}
	return 0
}

// handshakeDeadline is when a dial gives up: HandshakeTimeout from now,
// or ctx's deadline if that comes first.
func (t *Transport) handshakeDeadline(ctx context.Context) time.Time {
	deadline := t.clock.Now().Add(t.cfg.HandshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	return deadline
}

// Accept waits for the next session a remote opened.
func (t *Transport) Accept(ctx context.Context) (security.Session, error) {
	select {
	case s := <-t.acceptQ:
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.done:
		return nil, ErrClosed
	}
}

// Close ends every session (telling the peers) and stops answering.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	sessions := make([]*session, 0, len(t.sessions))
	for _, s := range t.sessions {
		sessions = append(sessions, s)
	}
	dials := make([]*handshake, 0, len(t.dials))
	for _, h := range t.dials {
		dials = append(dials, h)
	}
	inbound := make([]*inbound, 0, len(t.inbound))
	for _, in := range t.inbound {
		inbound = append(inbound, in)
	}
	t.mu.Unlock()
	t.port.HandleType(transport.TypeNoiseInitiation, nil)
	t.port.HandleType(transport.TypeNoiseResponse, nil)
	t.port.HandleType(transport.TypeNoiseCookie, nil)
	t.port.HandleType(transport.TypeNoiseData, nil)
	for _, s := range sessions {
		s.close(true, ErrClosed)
	}
	for _, h := range dials {
		h.fail(ErrClosed)
	}
	for _, in := range inbound {
		t.dropInbound(in)
	}
	// Sessions still waiting for Accept were closed above.
	t.timers.close()
	t.early.clear()
	t.tickets.purge()
	t.ssCache.purge()
	t.ephs.close()
	t.primary.kp.wipe()
	if t.secondary != nil {
		t.secondary.kp.wipe()
	}
	return nil
}

// timestamp returns a strictly increasing nanosecond timestamp for hellos.
func (t *Transport) timestamp() uint64 {
	now := uint64(t.clock.Now().UnixNano())
	t.tsMu.Lock()
	defer t.tsMu.Unlock()
	if now <= t.lastTS {
		now = t.lastTS + 1
	}
	t.lastTS = now
	return now
}

// write sends a packet along a path and counts it.
func (t *Transport) write(p Path, pkt []byte) error {
	err := p.WritePacket(pkt)
	if err == nil {
		t.stats.packetsSent.Add(1)
		t.stats.bytesSent.Add(uint64(len(pkt)))
	}
	return err
}

// sendBuf is a pooled packet buffer with room for a nonce, so that sealing
// allocates nothing.
type sendBuf struct {
	b     []byte
	nonce [12]byte
}

func (t *Transport) getBuf() *sendBuf  { return t.bufs.Get().(*sendBuf) }
func (t *Transport) putBuf(b *sendBuf) { b.b = b.b[:0]; t.bufs.Put(b) }

// staticFor returns our static key whose mac1 key authenticates an IK
// initiation, or nil.
func (t *Transport) staticFor(pkt []byte) *localStatic {
	if checkMAC1(pkt, &t.primary.mac1Key) {
		return t.primary
	}
	if t.secondary != nil && checkMAC1(pkt, &t.secondary.mac1Key) {
		return t.secondary
	}
	return nil
}

// halfOpen counts inbound handshakes with state that are not confirmed.
func (t *Transport) halfOpenLocked() int { return len(t.inbound) }

func (t *Transport) now() time.Time { return t.clock.Now() }
