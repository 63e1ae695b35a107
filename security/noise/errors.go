package noise

import "errors"

// Errors of the wire decoders; every one wraps ErrMalformed.
var (
	// ErrMalformed is wrapped by every error about bytes that are not a
	// well-formed packet of this protocol.
	ErrMalformed = errors.New("noise: malformed packet")
	// ErrClosed is returned after the Transport was closed.
	ErrClosed = errors.New("noise: transport closed")
	// ErrNoIdentity is returned when a handshake's payload does not bind the
	// remote's Noise static key to an Ed25519 identity.
	ErrNoIdentity = errors.New("noise: remote did not prove an identity")
)

var errWiped = errors.New("noise: keys wiped")
