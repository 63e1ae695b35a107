package noise

import (
	"encoding/binary"
	"fmt"

	"github.com/ipv8/go-ipv8/peer"
)

// Hello is the payload a side puts in the Noise handshake message that
// carries its static key (IK 1 and 2, XX 2 and 3), encrypted by Noise:
//
//	0      flags: 0x01 rekey, 0x02 Ed25519 key follows, 0x04 X25519 key follows, 0x08 signature follows
//	1..8   timestamp (big endian, nanoseconds; strictly increasing per sender)
//	[32]   Ed25519 public key, if flagged: the identity (peer.ID) of the sender
//	[32]   X25519 key, if flagged: the identity's X25519 half, when it is not the Noise static key
//	[64]   Ed25519 signature, if flagged, of "go-ipv8/noise/static-key:" ‖ the identity's X25519 key
//	rest   early data (the initiator's IK message 1 and XX message 3 only)
//
// A rekey hello continues the sender's existing session with the receiver;
// otherwise it opens a new session. See docs/protocol/noise.md for when the
// Ed25519 key and the signature are needed.
type Hello struct {
	Rekey     bool
	Timestamp uint64
	Ed25519   []byte // nil when absent; aliases the parsed payload
	X25519    []byte
	Signature []byte
	Early     []byte
}

const (
	helloRekey  = 0x01
	helloEd     = 0x02
	helloX      = 0x04
	helloSig    = 0x08
	helloFlags  = helloRekey | helloEd | helloX | helloSig
	helloMinLen = 1 + timestampSize
)

// ParseHello reads a handshake payload. Its slices alias b.
func ParseHello(b []byte) (Hello, error) {
	var h Hello
	if len(b) < helloMinLen {
		return h, fmt.Errorf("%w: hello of %d bytes", ErrMalformed, len(b))
	}
	f := b[0]
	if f&^helloFlags != 0 {
		return h, fmt.Errorf("%w: unknown hello flags %#x", ErrMalformed, f)
	}
	h.Rekey = f&helloRekey != 0
	h.Timestamp = binary.BigEndian.Uint64(b[1:9])
	b = b[helloMinLen:]
	take := func(flag byte, n int, what string) ([]byte, error) {
		if f&flag == 0 {
			return nil, nil
		}
		if len(b) < n {
			return nil, fmt.Errorf("%w: hello too short for its %s", ErrMalformed, what)
		}
		v := b[:n:n]
		b = b[n:]
		return v, nil
	}
	var err error
	if h.Ed25519, err = take(helloEd, 32, "Ed25519 key"); err != nil {
		return h, err
	}
	if h.X25519, err = take(helloX, keyLen, "X25519 key"); err != nil {
		return h, err
	}
	if h.Signature, err = take(helloSig, peer.SignatureSize, "signature"); err != nil {
		return h, err
	}
	h.Early = b
	return h, nil
}

// Append appends the payload to b.
func (h *Hello) Append(b []byte) []byte {
	var f byte
	if h.Rekey {
		f |= helloRekey
	}
	if h.Ed25519 != nil {
		f |= helloEd
	}
	if h.X25519 != nil {
		f |= helloX
	}
	if h.Signature != nil {
		f |= helloSig
	}
	b = append(b, f)
	b = binary.BigEndian.AppendUint64(b, h.Timestamp)
	b = append(b, h.Ed25519...)
	b = append(b, h.X25519...)
	b = append(b, h.Signature...)
	return append(b, h.Early...)
}

// Len is the encoded size.
func (h *Hello) Len() int {
	return helloMinLen + len(h.Ed25519) + len(h.X25519) + len(h.Signature) + len(h.Early)
}
