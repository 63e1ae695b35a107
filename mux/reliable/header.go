package reliable

import "fmt"

// The packet header: every session payload the mux sends starts with a
// version byte and the packet number (a varint). Frames follow to the end
// of the payload. The session below already authenticates and encrypts, so
// the header needs no protection of its own; the packet number is the
// mux's, independent of the session's nonce counter, because loss recovery
// must see which of its own packets arrived.

const (
	packetVersion = 1
	// maxHeaderLen is the largest header: version byte + 8-byte varint.
	maxHeaderLen = 1 + 8
)

// ErrBadVersion is returned for a packet of an unknown mux version.
var ErrBadVersion = fmt.Errorf("%w: unknown packet version", ErrInvalidFrame)

// PacketHeader is the header of a mux packet.
type PacketHeader struct {
	PacketNumber uint64
}

// Append writes the header.
func (h PacketHeader) Append(b []byte) []byte {
	return appendVarint(append(b, packetVersion), h.PacketNumber)
}

// Len is the encoded size of the header.
func (h PacketHeader) Len() int { return 1 + varintLen(h.PacketNumber) }

// ParsePacketHeader reads a header from the front of b and returns the bytes consumed.
func ParsePacketHeader(b []byte) (PacketHeader, int, error) {
	if len(b) == 0 {
		return PacketHeader{}, 0, truncated("packet version")
	}
	if b[0] != packetVersion {
		return PacketHeader{}, 0, fmt.Errorf("%w %d", ErrBadVersion, b[0])
	}
	pn, n := readVarint(b[1:])
	if n == 0 {
		return PacketHeader{}, 0, truncated("packet number")
	}
	return PacketHeader{PacketNumber: pn}, 1 + n, nil
}
