package noise

import (
	"encoding/binary"
	"fmt"

	"github.com/ipv8/go-ipv8/transport"
)

// KindEarly marks a 0-RTT data packet: an initiator's payload sent after
// its initiation and before the responder's answer, under the early key
// (docs/protocol/noise.md, "0-RTT data"). It shares the transport data
// packet's type (0x07) and layout, with one difference:
//
//	0      type (transport.TypeNoiseData)
//	1      kind = 4
//	2..3   zero (no data-cipher flags: 0-RTT is ChaCha20-Poly1305)
//	4..7   the initiator's sender index of the initiation it follows
//	       (the responder has no index of its own to give out yet)
//	8..15  counter (big endian): the AEAD nonce, from 0, once per packet
//	16..   ChaCha20-Poly1305 ciphertext and tag; the 16 header bytes are
//	       the additional data
//
// Its overhead is a data packet's (DataOverhead), so a payload that fits a
// session's MaxPayload fits a 0-RTT packet.
const KindEarly Kind = 4

// ParseEarlyHeader reads the header of a 0-RTT data packet and returns it
// with the number of bytes it takes (DataHeaderLen). ReceiverIndex holds
// the initiator's sender index. The rest of b must hold at least a tag.
func ParseEarlyHeader(b []byte) (DataHeader, int, error) {
	var h DataHeader
	if len(b) < DataHeaderLen+tagLen || b[0] != transport.TypeNoiseData {
		return h, 0, fmt.Errorf("%w: not a data packet (%d bytes)", ErrMalformed, len(b))
	}
	if Kind(b[1]) != KindEarly {
		return h, 0, fmt.Errorf("%w: data kind %d is not 0-RTT", ErrMalformed, b[1])
	}
	if b[2]|b[3] != 0 {
		return h, 0, fmt.Errorf("%w: data header reserved bytes set", ErrMalformed)
	}
	h.Kind = KindEarly
	h.ReceiverIndex = binary.BigEndian.Uint32(b[4:8])
	h.Counter = binary.BigEndian.Uint64(b[8:16])
	return h, DataHeaderLen, nil
}
