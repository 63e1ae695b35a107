package udp

import (
	"encoding/binary"
	"strconv"
)

// Class is what a packet on the port is, decided by its first bytes.
type Class uint8

// The classes of packets on the port (docs/protocol/port.md).
const (
	ClassInvalid   Class = iota // empty, or 0x00–0x03 that is neither STUN nor IPv8
	ClassSTUN                   // 0x00–0x03 with the STUN magic cookie at bytes 4–7
	ClassCommunity              // 0x00 0x02 without the cookie: an IPv8 community packet
	ClassOwn                    // 0x04–0x3F: go-ipv8's own packet types (transport.Type*)
	ClassQUIC                   // 0x40–0xFF: the QUIC fixed bit or the long-header bit is set

	// NumClasses sizes arrays indexed by Class.
	NumClasses
)

// stunMagicCookie is RFC 5389's fixed value at bytes 4–7 of every STUN message.
const stunMagicCookie = 0x2112A442

// stunHeaderLen is the length of a STUN header; nothing shorter is STUN.
const stunHeaderLen = 20

// quicMin is the lowest first byte of QUIC: every QUIC packet has the fixed
// bit 0x40 or the long-header bit 0x80 set (a Version Negotiation packet may
// clear the fixed bit; quic-go accepts it), so 0x40–0xFF is QUIC's.
const quicMin = 0x40

// Classify tells which subsystem a packet belongs to. The rules are checked
// in this order, so a 0x00 0x02 packet carrying the magic cookie is STUN:
//
//	len 0                                  ClassInvalid
//	first byte ≥ 0x40                      ClassQUIC (fixed or long-header bit)
//	0x04–0x3F                              ClassOwn
//	0x00–0x03, ≥ 20 bytes, cookie at 4–7   ClassSTUN
//	0x00 0x02                              ClassCommunity
//	anything else                          ClassInvalid
func Classify(b []byte) Class {
	if len(b) == 0 {
		return ClassInvalid
	}
	switch first := b[0]; {
	case first >= quicMin:
		return ClassQUIC
	case first >= 0x04:
		return ClassOwn
	case len(b) >= stunHeaderLen && binary.BigEndian.Uint32(b[4:8]) == stunMagicCookie:
		return ClassSTUN
	case first == 0x00 && len(b) >= 2 && b[1] == 0x02:
		return ClassCommunity
	default:
		return ClassInvalid
	}
}

var classNames = [NumClasses]string{
	ClassInvalid:   "invalid",
	ClassSTUN:      "stun",
	ClassCommunity: "community",
	ClassOwn:       "own",
	ClassQUIC:      "quic",
}

func (c Class) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}
