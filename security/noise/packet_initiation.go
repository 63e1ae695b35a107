package noise

import (
	"encoding/binary"
	"fmt"

	"github.com/ipv8/go-ipv8/transport"
)

// Pattern is the Noise handshake pattern an initiation starts.
type Pattern uint8

const (
	// PatternIK: the initiator knows the responder's static key (dial by
	// peer ID); two messages.
	PatternIK Pattern = 1
	// PatternXX: the initiator knows only an address; three messages.
	PatternXX Pattern = 2
)

func (p Pattern) String() string {
	switch p {
	case PatternIK:
		return "IK"
	case PatternXX:
		return "XX"
	case PatternResume:
		return "resume"
	}
	return fmt.Sprintf("pattern(%d)", uint8(p))
}

// Initiation is the first handshake message (packet type 0x04):
//
//	0      type (transport.TypeNoiseInitiation)
//	1      pattern (1 IK, 2 XX)
//	2..5   sender index (big endian): where the responder addresses its reply
//	6..    Noise message 1
//	-32    mac1: keyed BLAKE2s-128 of everything before it
//	-16    mac2: keyed BLAKE2s-128 (key: a cookie) of everything before it, or zeros
type Initiation struct {
	Pattern     Pattern
	SenderIndex uint32
	Message     []byte // aliases the parsed packet
	MAC1, MAC2  [macLen]byte
}

// Minimum Noise message 1 sizes: IK carries e, the encrypted s and an
// encrypted payload (at least its tag); XX carries e.
const (
	minIKMessage1 = keyLen + keyLen + tagLen + tagLen
	minXXMessage1 = keyLen
)

// ParseInitiation reads an initiation packet. Message aliases b.
func ParseInitiation(b []byte) (Initiation, error) {
	var m Initiation
	if len(b) < initiationHeaderLen+2*macLen || b[0] != transport.TypeNoiseInitiation {
		return m, fmt.Errorf("%w: not an initiation (%d bytes)", ErrMalformed, len(b))
	}
	m.Pattern = Pattern(b[1])
	m.SenderIndex = binary.BigEndian.Uint32(b[2:6])
	m.Message = b[initiationHeaderLen : len(b)-2*macLen]
	copy(m.MAC1[:], b[len(b)-2*macLen:])
	copy(m.MAC2[:], b[len(b)-macLen:])
	switch m.Pattern {
	case PatternIK:
		if len(m.Message) < minIKMessage1 {
			return m, fmt.Errorf("%w: IK initiation message of %d bytes", ErrMalformed, len(m.Message))
		}
	case PatternXX:
		if len(b) < minXXInitiation {
			return m, fmt.Errorf("%w: XX initiation of %d bytes, want at least %d", ErrMalformed, len(b), minXXInitiation)
		}
	default:
		return m, fmt.Errorf("%w: unknown pattern %d", ErrMalformed, b[1])
	}
	if len(m.Message) > maxNoiseMessage {
		return m, fmt.Errorf("%w: initiation message of %d bytes", ErrMalformed, len(m.Message))
	}
	return m, nil
}

// Append appends the packet to b.
func (m *Initiation) Append(b []byte) []byte {
	b = append(b, transport.TypeNoiseInitiation, byte(m.Pattern))
	b = binary.BigEndian.AppendUint32(b, m.SenderIndex)
	b = append(b, m.Message...)
	b = append(b, m.MAC1[:]...)
	return append(b, m.MAC2[:]...)
}

// initiationMAC1Offset and MAC2 offsets of a complete initiation packet.
func mac1Offset(pkt []byte) int { return len(pkt) - 2*macLen }
func mac2Offset(pkt []byte) int { return len(pkt) - macLen }

// ephemeralOf returns the initiator's ephemeral key in an initiation's
// Noise message (both patterns start with e, in the clear).
func (m *Initiation) ephemeralOf() []byte { return m.Message[:keyLen] }
