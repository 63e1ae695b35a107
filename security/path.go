package security

import (
	"context"
	"net/netip"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
)

// Path is where a session's packets go. A session holds one and replaces it
// when an authenticated packet arrives over another (roaming, or a move
// between a relay and the direct route) — never on an unauthenticated one,
// and without a new handshake. The port's direct path is built into the
// implementation; a relay circuit (nat/relay) implements Path by wrapping
// each packet in its own header, and a punched path (nat/punch) by sending
// from the socket the punch went through.
//
// It lives here, not in security/noise, so that a transport can dial over a
// path (PathDialer) without importing the implementation. Implementations
// must be comparable with == (pointers are), since a packet arriving over
// the session's current path must not cost an allocation.
type Path interface {
	// WritePacket sends one sealed packet along the path. It does not keep pkt.
	WritePacket(pkt []byte) error
	// Addr is the UDP address packets are sent to (for a relayed path, the relay's).
	Addr() netip.AddrPort
	// Kind tells a direct path from a relayed one.
	Kind() transport.PathKind
	// Overhead is the bytes the path adds to each packet (0 for direct).
	Overhead() int
}

// PathDialer is an optional interface of a SecureTransport that can run a
// handshake over a given path, such as a relay circuit. security/noise
// implements it.
type PathDialer interface {
	// DialPath is SecureTransport.Dial over path. A live session with p is
	// returned as it is, whatever path it runs on; a handshake with p
	// already in flight over another path is sent over this one too.
	DialPath(ctx context.Context, path Path, p peer.ID, early []byte) (Session, error)
}

// PathSetter is implemented by sessions that can be moved to another path
// without a new handshake (security/noise's): NAT traversal moves a session
// from a relay circuit to a punched direct path and back.
type PathSetter interface {
	// Path is the path the session sends along now.
	Path() Path
	// SetPath makes the session send along p from now on; the peer's
	// session follows on the first authenticated packet over it.
	SetPath(p Path) error
}
