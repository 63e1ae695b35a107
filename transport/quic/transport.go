package quic

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	quicgo "github.com/quic-go/quic-go"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
)

// Name is the transport's name in logs, Conn.Transport() and the CLI.
const Name = "quic"

// Transport is the QUIC transport of one host. It owns one quic.Transport on
// the host's QUIC socket, used both to dial and to listen.
type Transport struct {
	key   *peer.PrivateKey
	local peer.ID
	cfg   Config
	log   *slog.Logger
	certs *certStore

	qt       *quicgo.Transport
	qconf    *quicgo.Config
	tlsConf  *tls.Config // base: server side, and cloned per dial
	laddr    ma.Multiaddr
	closed   atomic.Bool
	mu       sync.Mutex
	conns    map[*conn]struct{}
	listener *listener
}

var _ transport.Transport = (*Transport)(nil)

// New returns a QUIC transport for the identity key on pconn, the QUIC socket
// of the host's UDP port. On Linux pconn should be the *net.UDPConn itself:
// quic-go then uses GSO and batched reads. The transport never closes pconn;
// its owner does, after Transport.Close.
func New(key *peer.PrivateKey, pconn net.PacketConn, cfg Config) (*Transport, error) {
	if key == nil || pconn == nil {
		return nil, errors.New("quic: New needs a key and a packet conn")
	}
	cfg = cfg.withDefaults()
	laddr, err := addrToMultiaddr(pconn.LocalAddr())
	if err != nil {
		return nil, fmt.Errorf("quic: local address: %w", err)
	}
	certs, err := newCertStore(key)
	if err != nil {
		return nil, err
	}
	// The stateless reset key comes from the identity, so that after a
	// restart the host can still tell peers of its old connections that
	// they are gone (RFC 9000, section 10.3).
	var resetKey quicgo.StatelessResetKey
	rk, err := hkdf.Key(sha256.New, key.Seed(), nil, "go-ipv8 quic stateless reset key", len(resetKey))
	if err != nil {
		return nil, fmt.Errorf("quic: deriving keys: %w", err)
	}
	copy(resetKey[:], rk)

	t := &Transport{
		key:   key,
		local: key.ID(),
		cfg:   cfg,
		log:   cfg.Logger.With("transport", Name),
		certs: certs,
		laddr: laddr,
		conns: make(map[*conn]struct{}),
	}
	t.qt = &quicgo.Transport{Conn: pconn, StatelessResetKey: &resetKey}
	t.qconf = &quicgo.Config{
		MaxIdleTimeout:                 cfg.MaxIdleTimeout,
		KeepAlivePeriod:                cfg.KeepAlivePeriod,
		HandshakeIdleTimeout:           cfg.HandshakeIdleTimeout,
		MaxIncomingStreams:             cfg.MaxIncomingStreams,
		MaxIncomingUniStreams:          -1, // go-ipv8 opens bidirectional streams only
		InitialStreamReceiveWindow:     cfg.InitialStreamReceiveWindow,
		MaxStreamReceiveWindow:         cfg.MaxStreamReceiveWindow,
		InitialConnectionReceiveWindow: cfg.InitialConnectionReceiveWindow,
		MaxConnectionReceiveWindow:     cfg.MaxConnectionReceiveWindow,
		EnableDatagrams:                true,
		Versions:                       []quicgo.Version{quicgo.Version1},
	}
	t.tlsConf = &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{alpn},
		// There is no CA: the certificate is self-signed and the identity
		// extension is the proof, checked in VerifyPeerCertificate, which
		// crypto/tls still calls with InsecureSkipVerify set.
		InsecureSkipVerify:     true,
		ClientAuth:             tls.RequireAnyClientCert,
		SessionTicketsDisabled: true, // a resumed session would skip the certificate check
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return t.certs.get(time.Now())
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return t.certs.get(time.Now())
		},
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if _, err := verifyCertificate(raw, time.Now()); err != nil {
				t.log.Debug("refused inbound handshake", "err", err)
				return err
			}
			return nil
		},
	}
	return t, nil
}

// Name returns "quic".
func (t *Transport) Name() string { return Name }

// LocalPeer is the identity the transport presents.
func (t *Transport) LocalPeer() peer.ID { return t.local }

// CanDial reports whether raddr is /ip4|ip6/…/udp/N/quic-v1 (without /p2p/).
func (t *Transport) CanDial(raddr ma.Multiaddr) bool {
	_, err := dialAddr(raddr)
	return err == nil
}

// dialAddr returns the UDP address of a /ip4|ip6/…/udp/N/quic-v1 multiaddr.
func dialAddr(raddr ma.Multiaddr) (netip.AddrPort, error) {
	return transport.DialAddrPort(raddr, ma.P_QUIC_V1, "/ip4|ip6/…/udp/N/quic-v1")
}

// Dial connects to p at raddr. The remote must prove, inside the TLS
// handshake, that it holds p's key: otherwise Dial fails with an error
// wrapping transport.ErrWrongPeer (or ErrInvalidCertificate) before any
// application data is sent.
func (t *Transport) Dial(ctx context.Context, raddr ma.Multiaddr, p peer.ID) (transport.Conn, error) {
	if t.closed.Load() {
		return nil, transport.ErrTransportClosed
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("quic: dial: %w", err)
	}
	ap, err := dialAddr(raddr)
	if err != nil {
		return nil, err
	}

	// The certificate check of this dial records why it refused, because
	// quic-go reports a refused certificate only as a TLS alert.
	var (
		verifyMu  sync.Mutex
		verifyErr error
	)
	tlsConf := t.tlsConf.Clone()
	tlsConf.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		id, err := verifyCertificate(raw, time.Now())
		if err == nil && id != p {
			err = fmt.Errorf("%w: dialled %s at %s, the remote is %s", transport.ErrWrongPeer, p, raddr, id)
		}
		if err != nil {
			verifyMu.Lock()
			verifyErr = err
			verifyMu.Unlock()
		}
		return err
	}

	qc, err := t.qt.Dial(ctx, net.UDPAddrFromAddrPort(ap), tlsConf, t.qconf)
	if err != nil {
		verifyMu.Lock()
		verr := verifyErr
		verifyMu.Unlock()
		err = t.dialErr(ctx, err, verr)
		t.log.Debug("dial failed", "peer", p, "addr", raddr, "err", err)
		return nil, err
	}
	c, err := t.newConn(qc)
	if err != nil {
		return nil, err
	}
	if c.remote != p { // cannot happen: the handshake checked it
		c.CloseWithError(transport.CodeInternal, "wrong peer")
		return nil, fmt.Errorf("%w: dialled %s, the remote is %s", transport.ErrWrongPeer, p, c.remote)
	}
	return c, nil
}

// Listen starts accepting inbound connections on the transport's socket.
// There is at most one Listener at a time.
func (t *Transport) Listen() (transport.Listener, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return nil, transport.ErrTransportClosed
	}
	if t.listener != nil {
		return nil, errors.New("quic: already listening")
	}
	ql, err := t.qt.Listen(t.tlsConf, t.qconf)
	if err != nil {
		return nil, fmt.Errorf("quic: listen: %w", err)
	}
	l := &listener{t: t, ql: ql}
	t.listener = l
	return l, nil
}

// Close closes every connection (telling each remote, with
// transport.CodeConnClosing) and the listener. It leaves the packet conn
// open: its owner closes it.
func (t *Transport) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	t.mu.Lock()
	l := t.listener
	conns := make([]*conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	if l != nil {
		l.Close()
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { c.CloseWithError(transport.CodeConnClosing, "transport closed") })
	}
	wg.Wait()
	// quic.Transport.Close ends what is left (handshakes in progress) and
	// stops reading pconn, which it does not own, so does not close.
	return t.qt.Close()
}

func (t *Transport) isClosed() bool { return t.closed.Load() }

// track registers c so Close can close it; it is forgotten when it ends.
func (t *Transport) track(c *conn) bool {
	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		return false
	}
	t.conns[c] = struct{}{}
	t.mu.Unlock()
	context.AfterFunc(c.qc.Context(), func() {
		t.mu.Lock()
		delete(t.conns, c)
		t.mu.Unlock()
	})
	return true
}

func (t *Transport) removeListener(l *listener) {
	t.mu.Lock()
	if t.listener == l {
		t.listener = nil
	}
	t.mu.Unlock()
}

// addrToMultiaddr returns /ip4|ip6/…/udp/N/quic-v1 for a UDP address (a
// *net.UDPAddr, or any net.Addr whose String is ip:port).
func addrToMultiaddr(a net.Addr) (ma.Multiaddr, error) {
	ap, err := addrPort(a)
	if err != nil {
		return nil, err
	}
	return transport.FromAddrPort(ap, "/quic-v1")
}

func addrPort(a net.Addr) (netip.AddrPort, error) {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort(), nil
	case nil:
		return netip.AddrPort{}, errors.New("no address")
	}
	return netip.ParseAddrPort(a.String())
}
