package quic

import (
	"context"
	"errors"
	"fmt"
	"net"

	ma "github.com/multiformats/go-multiaddr"
	quicgo "github.com/quic-go/quic-go"

	"github.com/ipv8/go-ipv8/transport"
)

// errListenerClosed is returned by Accept after the Listener closed.
var errListenerClosed = fmt.Errorf("quic: listener closed: %w", net.ErrClosed)

// listener yields the inbound connections whose handshake, including the
// check of the client's certificate, has completed.
type listener struct {
	t  *Transport
	ql *quicgo.Listener
}

var _ transport.Listener = (*listener)(nil)

// Accept waits for the next authenticated inbound connection.
func (l *listener) Accept(ctx context.Context) (transport.Conn, error) {
	for {
		qc, err := l.ql.Accept(ctx)
		if err != nil {
			switch {
			case ctx.Err() != nil && isContextErr(err):
				return nil, err
			case l.t.isClosed():
				return nil, transport.ErrTransportClosed
			case errors.Is(err, quicgo.ErrServerClosed):
				return nil, errListenerClosed
			}
			return nil, fmt.Errorf("quic: accept: %w", err)
		}
		c, err := l.t.newConn(qc)
		if err != nil {
			if errors.Is(err, transport.ErrTransportClosed) {
				return nil, err
			}
			l.t.log.Debug("dropped inbound connection", "addr", qc.RemoteAddr(), "err", err)
			continue
		}
		return c, nil
	}
}

// Multiaddr is the bound address, /ip4|ip6/…/udp/N/quic-v1.
func (l *listener) Multiaddr() ma.Multiaddr { return l.t.laddr }

// Close stops accepting; established connections stay open.
func (l *listener) Close() error {
	l.t.removeListener(l)
	return l.ql.Close()
}
