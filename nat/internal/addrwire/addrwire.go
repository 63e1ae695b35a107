// Package addrwire encodes the UDP address that the NAT traversal
// protocols (nat/punch, nat/relay) carry in their packets: a family byte
// (4 or 6), the port (2 bytes, big-endian), then 4 or 16 bytes of address.
// docs/protocol/nat.md specifies it; it lives here once so
// the two stay the same.
package addrwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// ErrTruncated: the bytes end inside the address.
var ErrTruncated = errors.New("address truncated")

// Append appends a's encoding to b. An IPv4-mapped IPv6 address travels
// as IPv4.
func Append(b []byte, a netip.AddrPort) []byte {
	ip := a.Addr().Unmap()
	if ip.Is4() {
		b = append(b, 4)
	} else {
		b = append(b, 6)
	}
	b = binary.BigEndian.AppendUint16(b, a.Port())
	return append(b, ip.AsSlice()...)
}

// Parse decodes an address at the start of b and returns it with the
// number of bytes it took.
func Parse(b []byte) (netip.AddrPort, int, error) {
	if len(b) < 3 {
		return netip.AddrPort{}, 0, ErrTruncated
	}
	var n int
	switch b[0] {
	case 4:
		n = 4
	case 6:
		n = 16
	default:
		return netip.AddrPort{}, 0, fmt.Errorf("address family %d", b[0])
	}
	if len(b) < 3+n {
		return netip.AddrPort{}, 0, ErrTruncated
	}
	ip, _ := netip.AddrFromSlice(b[3 : 3+n])
	return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[1:3])), 3 + n, nil
}
