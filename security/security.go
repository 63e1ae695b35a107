// Package security defines how go-ipv8 secures datagrams between two peers:
// a SecureTransport runs handshakes on the host's UDP port and yields
// Sessions, each an authenticated, encrypted datagram channel to one peer.
// The implementation is security/noise (Noise IK/XX over datagrams); the
// mux package builds reliable streams on a Session.
package security

import (
	"context"
	"errors"
	"net/netip"

	"github.com/ipv8/go-ipv8/peer"
)

// Errors a caller may branch on.
var (
	ErrWrongPeer        = errors.New("security: remote proved a different identity than the one dialled")
	ErrHandshakeTimeout = errors.New("security: handshake timed out")
	ErrSessionClosed    = errors.New("security: session closed")
	ErrTooLarge         = errors.New("security: payload too large for one packet")
)

// SecureTransport makes Sessions over the host's port.
type SecureTransport interface {
	// Dial runs a handshake with the peer at addr. When p is known its
	// static key is derived from the ID (Noise IK, one round trip, and
	// early carries data in the first flight); when p is "" the responder's
	// identity is learnt in the handshake (Noise XX). The returned session
	// is authenticated: its remote proved that it holds p's key, or Dial
	// fails with an error wrapping ErrWrongPeer.
	Dial(ctx context.Context, addr netip.AddrPort, p peer.ID, early []byte) (Session, error)
	// Accept waits for the next session a remote initiated.
	Accept(ctx context.Context) (Session, error)
	Close() error
}

// Session is an authenticated, encrypted datagram channel to one peer. It
// belongs to the peer, not to an address: an authenticated packet from a
// new address moves the session there.
type Session interface {
	LocalPeer() peer.ID
	RemotePeer() peer.ID
	RemotePublicKey() *peer.PublicKey
	// RemoteAddr is where packets go now (it changes when the peer roams).
	RemoteAddr() netip.AddrPort
	// MaxPayload is the largest plaintext Send takes.
	MaxPayload() int
	// Send encrypts b and sends it to the peer. It does not keep b.
	Send(b []byte) error
	// SetReceiver installs the function that gets each decrypted payload,
	// in order of arrival (not of sending), on the port's read goroutine:
	// it must not block, and b is valid only during the call. Payloads that
	// arrived before a receiver was set (0-RTT data) are delivered to it.
	SetReceiver(f func(b []byte))
	// Done is closed when the session ends.
	Done() <-chan struct{}
	Close() error
}

// EarlyDialer is an optional interface of a SecureTransport that hands out
// a session before its handshake completes, so that the first packets of
// the layer above ride in the handshake's first flight (0-RTT), as QUIC's
// DialEarly does. Only a dial by peer ID can be early: the responder's key
// must be known.
type EarlyDialer interface {
	// DialEarly starts a handshake with p at addr and returns its session
	// at once, unauthenticated yet. Until the handshake completes,
	// SendEarly sends payloads as 0-RTT data; the responder delivers them
	// once it has authenticated the initiation they follow. For a
	// session it returned, established is called once, on the transport's
	// goroutine (it must not block), when the handshake ends: with nil
	// when the returned session is up, or with the error that ended the
	// dial (the returned session is then closed) and, when the dial lost
	// a simultaneous open to the peer's own handshake, the session that
	// came of that one. A live session with p is returned as it is
	// (established is then called at once).
	DialEarly(ctx context.Context, addr netip.AddrPort, p peer.ID, established func(other Session, err error)) (EarlySession, error)
}

// EarlySession is a session from DialEarly.
type EarlySession interface {
	Session
	// SendEarly sends b as 0-RTT data while the handshake runs and reports
	// whether it did. It reports false once the handshake completed (or
	// the session's 0-RTT budget is spent): Send then takes over, and
	// queues what it cannot send until the keys are ready. 0-RTT data can
	// be replayed to the responder (see the implementation's spec): send
	// early only what is safe to receive twice.
	SendEarly(b []byte) (sent bool, err error)
}

// SessionErr is implemented by sessions that can tell why they ended; the
// layer above reports it (for an early session whose handshake failed, the
// error wraps ErrWrongPeer when the remote was not the peer dialled).
type SessionErr interface {
	// Err is nil while the session runs and after an orderly close.
	Err() error
}
