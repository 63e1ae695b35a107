package noise

import (
	"encoding/binary"
	"fmt"

	"github.com/ipv8/go-ipv8/transport"
)

// PatternResume: the initiator holds a resumption ticket from an earlier
// session with the responder (Noise NNpsk0 keyed by the ticket's secret);
// two messages, one Diffie-Hellman per side (resume.go).
const PatternResume Pattern = 3

// ticketIDLen is the size of a ticket's name on the wire.
const ticketIDLen = 16

// ResumeInitiation is the first message of a resumption (packet type 0x04,
// pattern 3):
//
//	0      type (transport.TypeNoiseInitiation)
//	1      pattern = 3
//	2..5   sender index (big endian)
//	6..21  ticket ID: names the ticket (and so the peer and the secret)
//	22..   Noise NNpsk0 message 1: e, encrypted hello
//	-32    mac1: keyed BLAKE2s-128 (key as for IK: the responder's static key) of everything before it
//	-16    mac2: keyed BLAKE2s-128 (key: a cookie) of everything before it, or zeros
type ResumeInitiation struct {
	SenderIndex uint32
	TicketID    [ticketIDLen]byte
	Message     []byte // aliases the parsed packet
	MAC1, MAC2  [macLen]byte
}

const (
	resumeHeaderLen = initiationHeaderLen + ticketIDLen
	// minResumeMessage1: e and an encrypted payload (at least its tag).
	minResumeMessage1 = keyLen + tagLen
)

// ParseResumeInitiation reads a resumption's first packet. Message aliases b.
func ParseResumeInitiation(b []byte) (ResumeInitiation, error) {
	var m ResumeInitiation
	if len(b) < resumeHeaderLen+minResumeMessage1+2*macLen || b[0] != transport.TypeNoiseInitiation {
		return m, fmt.Errorf("%w: not a resumption (%d bytes)", ErrMalformed, len(b))
	}
	if Pattern(b[1]) != PatternResume {
		return m, fmt.Errorf("%w: pattern %d is not a resumption", ErrMalformed, b[1])
	}
	m.SenderIndex = binary.BigEndian.Uint32(b[2:6])
	copy(m.TicketID[:], b[initiationHeaderLen:resumeHeaderLen])
	m.Message = b[resumeHeaderLen : len(b)-2*macLen]
	if len(m.Message) > maxNoiseMessage {
		return m, fmt.Errorf("%w: resumption message of %d bytes", ErrMalformed, len(m.Message))
	}
	copy(m.MAC1[:], b[len(b)-2*macLen:])
	copy(m.MAC2[:], b[len(b)-macLen:])
	return m, nil
}

// Append appends the packet to b.
func (m *ResumeInitiation) Append(b []byte) []byte {
	b = append(b, transport.TypeNoiseInitiation, byte(PatternResume))
	b = binary.BigEndian.AppendUint32(b, m.SenderIndex)
	b = append(b, m.TicketID[:]...)
	b = append(b, m.Message...)
	b = append(b, m.MAC1[:]...)
	return append(b, m.MAC2[:]...)
}

// ephemeral returns the initiator's ephemeral key (in the clear at the
// start of the Noise message).
func (m *ResumeInitiation) ephemeral() []byte { return m.Message[:keyLen] }
