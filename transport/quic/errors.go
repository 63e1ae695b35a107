package quic

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"

	quicgo "github.com/quic-go/quic-go"

	"github.com/ipv8/go-ipv8/protocol"
	"github.com/ipv8/go-ipv8/transport"
)

// The transport package's errors are the contract; quic-go's never leave this
// package bare. Connection-level errors become a *transport.ConnError (an
// application close, local or remote) or wrap transport.ErrConnClosed (idle
// timeout, stateless reset, QUIC protocol errors); after Transport.Close they
// also match transport.ErrTransportClosed. Stream resets become a
// *transport.StreamError that names the stream's protocol.

// errorCode narrows a QUIC application error code (62 bits) to an ErrorCode;
// codes that do not fit, which no go-ipv8 peer sends, read as CodeInternal.
func errorCode[T ~uint64](c T) transport.ErrorCode {
	if uint64(c) > math.MaxUint32 {
		return transport.CodeInternal
	}
	return transport.ErrorCode(c)
}

// streamErr maps an error of a quic-go stream operation on a stream of
// protocol p.
func (c *conn) streamErr(err error, p protocol.ID) error {
	if err == nil {
		return nil
	}
	if se, ok := errors.AsType[*quicgo.StreamError](err); ok {
		return &transport.StreamError{Code: errorCode(se.ErrorCode), Remote: se.Remote, Protocol: p}
	}
	return c.connErr(err)
}

// connErr maps an error of a quic-go connection operation.
func (c *conn) connErr(err error) error {
	if err == nil {
		return nil
	}
	var mapped error
	if ae, ok := errors.AsType[*quicgo.ApplicationError](err); ok {
		mapped = &transport.ConnError{Code: errorCode(ae.ErrorCode), Reason: ae.ErrorMessage, Remote: ae.Remote}
	} else if connGone(err) || (!isContextErr(err) && c.qc.Context().Err() != nil) {
		mapped = fmt.Errorf("%w: %w", transport.ErrConnClosed, err)
	} else {
		return err
	}
	if c.t.isClosed() {
		return fmt.Errorf("%w (%w)", mapped, transport.ErrTransportClosed)
	}
	return mapped
}

// connGone reports whether err says that the QUIC connection has ended.
func connGone(err error) bool {
	if _, ok := errors.AsType[*quicgo.TransportError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*quicgo.IdleTimeoutError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*quicgo.HandshakeTimeoutError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*quicgo.StatelessResetError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*quicgo.VersionNegotiationError](err); ok {
		return true
	}
	return errors.Is(err, net.ErrClosed)
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// dialErr maps an error of a failed dial: the context's own error, a wrong
// peer (recorded by the certificate check, which quic-go reports only as a
// TLS alert), a handshake timeout, or a closed transport.
func (t *Transport) dialErr(ctx context.Context, err error, verifyErr error) error {
	switch {
	case verifyErr != nil:
		return verifyErr
	case ctx.Err() != nil && isContextErr(err):
		return err
	case t.isClosed():
		return fmt.Errorf("%w: %w", transport.ErrTransportClosed, err)
	}
	if _, ok := errors.AsType[*quicgo.HandshakeTimeoutError](err); ok {
		return fmt.Errorf("%w: %w", transport.ErrHandshakeTimeout, err)
	}
	if _, ok := errors.AsType[*quicgo.IdleTimeoutError](err); ok {
		// The handshake heard nothing back within HandshakeIdleTimeout.
		return fmt.Errorf("%w: %w", transport.ErrHandshakeTimeout, err)
	}
	return fmt.Errorf("quic: dial: %w", err)
}
