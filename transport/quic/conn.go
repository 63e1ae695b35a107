package quic

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	quicgo "github.com/quic-go/quic-go"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocol"
	"github.com/ipv8/go-ipv8/transport"
)

// conn is an authenticated QUIC connection.
type conn struct {
	t         *Transport
	qc        *quicgo.Conn
	remote    peer.ID
	remoteKey *peer.PublicKey
	local     ma.Multiaddr
	opened    time.Time
	datagrams bool // the remote accepts DATAGRAM frames

	mu         sync.Mutex
	remoteAddr net.Addr // last seen, to notice the remote moving
	remoteMA   ma.Multiaddr
}

var _ transport.Conn = (*conn)(nil)

// newConn wraps a QUIC connection whose handshake has completed (and so
// whose peer certificate passed verifyCertificate) and registers it with the
// transport.
func (t *Transport) newConn(qc *quicgo.Conn) (*conn, error) {
	fail := func(err error) (*conn, error) {
		qc.CloseWithError(quicgo.ApplicationErrorCode(transport.CodeInternal), "")
		return nil, err
	}
	state := qc.ConnectionState()
	if len(state.TLS.PeerCertificates) != 1 {
		return fail(fmt.Errorf("%w: no peer certificate after the handshake", ErrInvalidCertificate))
	}
	pub, _, err := certIdentity(state.TLS.PeerCertificates[0])
	if err != nil {
		return fail(err)
	}
	remote := peer.IDFromEd25519(pub)
	remoteKey, err := remote.PublicKey()
	if err != nil {
		return fail(err)
	}
	local, err := addrToMultiaddr(qc.LocalAddr())
	if err != nil {
		local = t.laddr
	}
	c := &conn{
		t:         t,
		qc:        qc,
		remote:    remote,
		remoteKey: remoteKey,
		local:     local,
		opened:    time.Now(),
		datagrams: state.SupportsDatagrams.Remote && state.SupportsDatagrams.Local,
	}
	if !t.track(c) {
		qc.CloseWithError(quicgo.ApplicationErrorCode(transport.CodeConnClosing), "transport closed")
		return nil, transport.ErrTransportClosed
	}
	return c, nil
}

func (c *conn) LocalPeer() peer.ID               { return c.t.local }
func (c *conn) RemotePeer() peer.ID              { return c.remote }
func (c *conn) RemotePublicKey() *peer.PublicKey { k := *c.remoteKey; return &k }
func (c *conn) LocalMultiaddr() ma.Multiaddr     { return c.local }
func (c *conn) Transport() string                { return Name }
func (c *conn) Done() <-chan struct{}            { return c.qc.Context().Done() }
func (c *conn) Close() error                     { return c.CloseWithError(transport.CodeNoError, "") }
func (c *conn) String() string                   { return fmt.Sprintf("quic conn to %s", c.remote) }
func (c *conn) closeErr() error                  { return c.connErr(context.Cause(c.qc.Context())) }
func (c *conn) isDone() bool                     { return c.qc.Context().Err() != nil }

// RemoteMultiaddr is the remote's current address (QUIC follows a remote
// whose address changes).
func (c *conn) RemoteMultiaddr() ma.Multiaddr {
	a := c.qc.RemoteAddr()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.remoteMA == nil || a.String() != c.remoteAddr.String() {
		m, err := addrToMultiaddr(a)
		if err != nil {
			return c.remoteMA
		}
		c.remoteAddr, c.remoteMA = a, m
	}
	return c.remoteMA
}

// CloseWithError closes the connection with code, which the remote's calls
// then report in a *transport.ConnError. It returns when the connection has
// ended.
func (c *conn) CloseWithError(code transport.ErrorCode, reason string) error {
	return c.qc.CloseWithError(quicgo.ApplicationErrorCode(code), reason)
}

// OpenStream opens a stream for p. Nothing is sent yet: the protocol header
// goes out with the stream's first Write (or its first Read or Close, if the
// opener does not write first).
func (c *conn) OpenStream(ctx context.Context, p protocol.ID) (transport.Stream, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	qs, err := c.qc.OpenStreamSync(ctx)
	if err != nil {
		if ctx.Err() != nil && isContextErr(err) {
			return nil, err
		}
		return nil, c.connErr(err)
	}
	return newStream(c, qs, p, true), nil
}

// AcceptStream returns the next stream the remote opened, once its protocol
// header has arrived. A stream whose header is malformed or does not arrive
// within Config.StreamHeaderTimeout is reset and skipped.
func (c *conn) AcceptStream(ctx context.Context) (transport.Stream, error) {
	for {
		qs, err := c.qc.AcceptStream(ctx)
		if err != nil {
			if ctx.Err() != nil && isContextErr(err) {
				return nil, err
			}
			return nil, c.connErr(err)
		}
		p, err := c.readHeader(ctx, qs)
		if err == nil {
			return newStream(c, qs, p, false), nil
		}
		code := transport.CodeProtocolNotSupported
		if ctx.Err() != nil {
			code = transport.CodeCancelled
		}
		qs.CancelRead(quicgo.StreamErrorCode(code))
		qs.CancelWrite(quicgo.StreamErrorCode(code))
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if c.isDone() {
			return nil, c.closeErr()
		}
		c.t.log.Debug("dropped inbound stream", "peer", c.remote, "stream", qs.StreamID(), "err", err)
	}
}

// readHeader reads a stream's protocol header, bounded by the header timeout
// and ctx.
func (c *conn) readHeader(ctx context.Context, qs *quicgo.Stream) (protocol.ID, error) {
	qs.SetReadDeadline(time.Now().Add(c.t.cfg.StreamHeaderTimeout))
	stop := context.AfterFunc(ctx, func() { qs.SetReadDeadline(time.Now()) })
	p, err := readStreamHeader(qs)
	stop()
	qs.SetReadDeadline(time.Time{})
	return p, err
}

// SendDatagram sends b in a QUIC DATAGRAM frame.
func (c *conn) SendDatagram(b []byte) error {
	if !c.datagrams {
		return transport.ErrDatagramsDisabled
	}
	err := c.qc.SendDatagram(b)
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*quicgo.DatagramTooLargeError](err); ok {
		return fmt.Errorf("%w: %d bytes, at most %d now", transport.ErrDatagramTooLarge, len(b), e.MaxDatagramPayloadSize)
	}
	return c.connErr(err)
}

// ReceiveDatagram waits for the next DATAGRAM frame.
func (c *conn) ReceiveDatagram(ctx context.Context) ([]byte, error) {
	b, err := c.qc.ReceiveDatagram(ctx)
	if err != nil {
		if ctx.Err() != nil && isContextErr(err) {
			return nil, err
		}
		return nil, c.connErr(err)
	}
	return b, nil
}

// datagramProbe is longer than any UDP payload. quic-go tells its current
// DATAGRAM payload limit (which grows with path MTU discovery) only in the
// DatagramTooLargeError of a SendDatagram call, and it checks the length
// before it copies or queues anything, so offering it this probe reads the
// limit without sending.
var datagramProbe [1 << 16]byte

// MaxDatagramSize is the largest payload SendDatagram takes now (0 when the
// remote does not accept datagrams or the connection has ended).
func (c *conn) MaxDatagramSize() int {
	if !c.datagrams || c.isDone() {
		return 0
	}
	if e, ok := errors.AsType[*quicgo.DatagramTooLargeError](c.qc.SendDatagram(datagramProbe[:])); ok {
		return int(e.MaxDatagramPayloadSize)
	}
	return 0
}

// Stats reports quic-go's measurements of the path.
func (c *conn) Stats() transport.Stats {
	s := c.qc.ConnectionStats()
	return transport.Stats{
		SmoothedRTT:      s.SmoothedRTT,
		MinRTT:           s.MinRTT,
		LatestRTT:        s.LatestRTT,
		RTTVar:           s.MeanDeviation,
		CongestionWindow: s.CongestionWindow,
		BytesSent:        s.BytesSent,
		BytesReceived:    s.BytesReceived,
		PacketsSent:      s.PacketsSent,
		PacketsReceived:  s.PacketsReceived,
		PacketsLost:      s.PacketsLost,
		BytesLost:        s.BytesLost,
		Path:             transport.PathDirect,
		Opened:           c.opened,
	}
}
