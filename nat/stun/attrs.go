package stun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Attribute types this package reads or writes (RFC 5389, RFC 5780, and the
// RFC 3489 names some old servers still send).
const (
	attrMappedAddress    = 0x0001
	attrChangeRequest    = 0x0003
	attrSourceAddress    = 0x0004 // RFC 3489; RESPONSE-ORIGIN's ancestor
	attrChangedAddress   = 0x0005 // RFC 3489; OTHER-ADDRESS's ancestor
	attrErrorCode        = 0x0009
	attrUnknownAttrs     = 0x000A
	attrXORMappedAddress = 0x0020
	attrPadding          = 0x0026
	attrResponsePort     = 0x0027
	attrSoftware         = 0x8022
	attrFingerprint      = 0x8028
	attrResponseOrigin   = 0x802B
	attrOtherAddress     = 0x802C
)

const magicCookie = 0x2112A442

// Errors of the decoders, usable with errors.Is.
var (
	// ErrMalformed: the bytes are not a well-formed STUN message or attribute.
	ErrMalformed = errors.New("stun: malformed message")
	// ErrNotBinding: a well-formed STUN message, but not a Binding request or response.
	ErrNotBinding = errors.New("stun: not a Binding message")
)

// Change holds the flags of a CHANGE-REQUEST attribute (RFC 5780 §7.2).
type Change uint8

const (
	ChangePort Change = 0x02 // answer from the other port
	ChangeIP   Change = 0x04 // answer from the other IP address
)

func (c Change) String() string {
	switch c & (ChangeIP | ChangePort) {
	case 0:
		return "none"
	case ChangeIP:
		return "ip"
	case ChangePort:
		return "port"
	}
	return "ip+port"
}

// AppendChangeRequest appends the 4-byte value of a CHANGE-REQUEST attribute.
func AppendChangeRequest(b []byte, c Change) []byte {
	return append(b, 0, 0, 0, byte(c&(ChangeIP|ChangePort)))
}

// ParseChangeRequest decodes a CHANGE-REQUEST value. Bits other than the two
// flags are ignored, as RFC 5780 asks; a value that is not 4 bytes long is
// an error.
func ParseChangeRequest(v []byte) (Change, error) {
	if len(v) != 4 {
		return 0, fmt.Errorf("%w: CHANGE-REQUEST of %d bytes, want 4", ErrMalformed, len(v))
	}
	return Change(v[3]) & (ChangeIP | ChangePort), nil
}

// AppendResponsePort appends the 4-byte value of a RESPONSE-PORT attribute
// (RFC 5780 §7.5): the port, then two bytes of padding.
func AppendResponsePort(b []byte, port uint16) []byte {
	return append(b, byte(port>>8), byte(port), 0, 0)
}

// ParseResponsePort decodes a RESPONSE-PORT value; port 0 is an error.
func ParseResponsePort(v []byte) (uint16, error) {
	if len(v) != 4 {
		return 0, fmt.Errorf("%w: RESPONSE-PORT of %d bytes, want 4", ErrMalformed, len(v))
	}
	p := binary.BigEndian.Uint16(v)
	if p == 0 {
		return 0, fmt.Errorf("%w: RESPONSE-PORT 0", ErrMalformed)
	}
	return p, nil
}

// appendAddress appends a MAPPED-ADDRESS style value (family, port, address).
// With xor it is XOR-MAPPED-ADDRESS encoded for transaction txid.
func appendAddress(b []byte, ap netip.AddrPort, xor bool, txid [12]byte) []byte {
	ip := ap.Addr().Unmap()
	port := ap.Port()
	var raw []byte
	family := byte(1)
	if ip.Is4() {
		a := ip.As4()
		raw = a[:]
	} else {
		a := ip.As16()
		raw = a[:]
		family = 2
	}
	if xor {
		port ^= magicCookie >> 16
		var key [16]byte
		binary.BigEndian.PutUint32(key[:], magicCookie)
		copy(key[4:], txid[:])
		for i := range raw {
			raw[i] ^= key[i]
		}
	}
	b = append(b, 0, family, byte(port>>8), byte(port))
	return append(b, raw...)
}

// parseAddress decodes a MAPPED-ADDRESS style value strictly: family 1 with
// exactly 4 address bytes or family 2 with exactly 16.
func parseAddress(v []byte, xor bool, txid [12]byte) (netip.AddrPort, error) {
	if len(v) < 4 {
		return netip.AddrPort{}, fmt.Errorf("%w: address attribute of %d bytes", ErrMalformed, len(v))
	}
	family, port := v[1], binary.BigEndian.Uint16(v[2:])
	raw := v[4:]
	switch {
	case family == 1 && len(raw) == 4, family == 2 && len(raw) == 16:
	default:
		return netip.AddrPort{}, fmt.Errorf("%w: address family %d with %d address bytes", ErrMalformed, family, len(raw))
	}
	var a [16]byte
	copy(a[:], raw)
	if xor {
		port ^= magicCookie >> 16
		var key [16]byte
		binary.BigEndian.PutUint32(key[:], magicCookie)
		copy(key[4:], txid[:])
		for i := range raw {
			a[i] ^= key[i]
		}
	}
	if family == 1 {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[:4])), port), nil
	}
	return netip.AddrPortFrom(netip.AddrFrom16(a), port), nil
}
