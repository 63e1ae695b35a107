package noise

import (
	"encoding/binary"
	"fmt"

	"github.com/ipv8/go-ipv8/transport"
)

// Kind tells what a transport data packet carries. It is in the header, and
// the header is the AEAD's additional data, so it cannot be altered.
type Kind uint8

const (
	// KindData carries a payload for the session's receiver; an empty one
	// is a keepalive (it confirms keys and is not delivered).
	KindData Kind = 0
	// KindClose tells the peer that the session ends.
	KindClose Kind = 1
	// KindPathChallenge asks the peer to echo 8 random bytes, to validate
	// a new address (roaming).
	KindPathChallenge Kind = 2
	// KindPathResponse echoes a challenge.
	KindPathResponse Kind = 3

	maxKind = KindPathResponse
)

// Flags of a transport data packet (byte 2 of its header): which AEAD
// sealed it, and whether its sender opens AES-256-GCM packets under the
// same keys (docs/protocol/noise.md, "Data cipher").
const (
	// FlagAESGCM: sealed with AES-256-GCM under the key derived from the
	// Noise transport key; without it, ChaCha20-Poly1305 under that key.
	FlagAESGCM = 0x01
	// FlagOpensAESGCM: the sender opens packets sealed with AES-256-GCM
	// under these keys; the receiver may seal with it from then on.
	FlagOpensAESGCM = 0x02

	knownFlags = FlagAESGCM | FlagOpensAESGCM
)

// DataHeader is the header of a transport data packet (type 0x07), the
// WireGuard layout with a kind byte and flags:
//
//	0      type (transport.TypeNoiseData)
//	1      kind
//	2      flags (FlagAESGCM, FlagOpensAESGCM; other bits zero)
//	3      reserved, zero
//	4..7   receiver index (big endian): the receiver's keypair
//	8..15  counter (big endian): the AEAD nonce, never reused under one key
//	16..   ciphertext and 16-byte tag (ChaCha20-Poly1305, or AES-256-GCM
//	       with FlagAESGCM); the 16 header bytes are the additional data
type DataHeader struct {
	Kind          Kind
	Flags         uint8
	ReceiverIndex uint32
	Counter       uint64
}

// ParseDataHeader reads the header of a transport data packet and returns
// it with the number of bytes it takes (DataHeaderLen). The rest of b must
// hold at least a tag.
func ParseDataHeader(b []byte) (DataHeader, int, error) {
	var h DataHeader
	if len(b) < DataHeaderLen+tagLen || b[0] != transport.TypeNoiseData {
		return h, 0, fmt.Errorf("%w: not a data packet (%d bytes)", ErrMalformed, len(b))
	}
	if b[2]&^knownFlags != 0 || b[3] != 0 {
		return h, 0, fmt.Errorf("%w: data header reserved bits set", ErrMalformed)
	}
	h.Kind = Kind(b[1])
	if h.Kind > maxKind {
		return h, 0, fmt.Errorf("%w: unknown data kind %d", ErrMalformed, b[1])
	}
	h.Flags = b[2]
	h.ReceiverIndex = binary.BigEndian.Uint32(b[4:8])
	h.Counter = binary.BigEndian.Uint64(b[8:16])
	return h, DataHeaderLen, nil
}

// Append appends the header to b.
func (h *DataHeader) Append(b []byte) []byte {
	b = append(b, transport.TypeNoiseData, byte(h.Kind), h.Flags, 0)
	b = binary.BigEndian.AppendUint32(b, h.ReceiverIndex)
	return binary.BigEndian.AppendUint64(b, h.Counter)
}
