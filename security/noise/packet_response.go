package noise

import (
	"encoding/binary"
	"fmt"

	"github.com/ipv8/go-ipv8/transport"
)

// Response carries the second handshake message and, for XX, the third
// (packet type 0x05):
//
//	0      type (transport.TypeNoiseResponse)
//	1      step: 2 (second message, from the responder) or 3 (XX third message, from the initiator)
//	2..5   sender index (big endian)
//	6..9   receiver index (big endian): the index the other side chose
//	10..   Noise message 2 or 3
type Response struct {
	Step          uint8
	SenderIndex   uint32
	ReceiverIndex uint32
	Message       []byte // aliases the parsed packet
}

// Minimum Noise message sizes: message 2 carries at least e and a payload
// tag; XX message 3 carries the encrypted s and a payload tag.
const (
	minMessage2     = keyLen + tagLen
	minXXMessage3   = keyLen + tagLen + tagLen
	maxNoiseMessage = 65535
)

// ParseResponse reads a response packet. Message aliases b.
func ParseResponse(b []byte) (Response, error) {
	var m Response
	if len(b) < responseHeaderLen || b[0] != transport.TypeNoiseResponse {
		return m, fmt.Errorf("%w: not a response (%d bytes)", ErrMalformed, len(b))
	}
	m.Step = b[1]
	m.SenderIndex = binary.BigEndian.Uint32(b[2:6])
	m.ReceiverIndex = binary.BigEndian.Uint32(b[6:10])
	m.Message = b[responseHeaderLen:]
	switch m.Step {
	case 2:
		if len(m.Message) < minMessage2 {
			return m, fmt.Errorf("%w: message 2 of %d bytes", ErrMalformed, len(m.Message))
		}
	case 3:
		if len(m.Message) < minXXMessage3 {
			return m, fmt.Errorf("%w: message 3 of %d bytes", ErrMalformed, len(m.Message))
		}
	default:
		return m, fmt.Errorf("%w: unknown handshake step %d", ErrMalformed, m.Step)
	}
	if len(m.Message) > maxNoiseMessage {
		return m, fmt.Errorf("%w: response message of %d bytes", ErrMalformed, len(m.Message))
	}
	return m, nil
}

// Append appends the packet to b.
func (m *Response) Append(b []byte) []byte {
	b = append(b, transport.TypeNoiseResponse, m.Step)
	b = binary.BigEndian.AppendUint32(b, m.SenderIndex)
	b = binary.BigEndian.AppendUint32(b, m.ReceiverIndex)
	return append(b, m.Message...)
}
