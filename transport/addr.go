package transport

import (
	"fmt"
	"net/netip"
	"strconv"

	ma "github.com/multiformats/go-multiaddr"
)

// ToAddrPort reads the /ip4|ip6/…/udp/N prefix of m and returns it with the
// components that follow (such as /quic-v1 or /ipv8).
func ToAddrPort(m ma.Multiaddr) (netip.AddrPort, ma.Multiaddr, error) {
	if len(m) < 2 {
		return netip.AddrPort{}, nil, fmt.Errorf("%w: %s does not start with /ip4|ip6/…/udp/N", ErrAddrNotSupported, m)
	}
	ipc, udpc := m[0], m[1]
	if (ipc.Code() != ma.P_IP4 && ipc.Code() != ma.P_IP6) || udpc.Code() != ma.P_UDP {
		return netip.AddrPort{}, nil, fmt.Errorf("%w: %s does not start with /ip4|ip6/…/udp/N", ErrAddrNotSupported, m)
	}
	ip, ok := netip.AddrFromSlice(ipc.RawValue())
	if !ok {
		return netip.AddrPort{}, nil, fmt.Errorf("%w: bad IP in %s", ErrAddrNotSupported, m)
	}
	port, err := strconv.ParseUint(udpc.Value(), 10, 16)
	if err != nil {
		return netip.AddrPort{}, nil, fmt.Errorf("%w: bad port in %s", ErrAddrNotSupported, m)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)), m[2:], nil
}

// DialAddrPort returns the UDP address of a dialable multiaddr of one
// transport: /ip4|ip6/…/udp/N followed by exactly the component code
// (named form in errors, as in "/ip4|ip6/…/udp/N/quic-v1"), with an address
// that can be dialled (not unspecified, port not 0).
func DialAddrPort(m ma.Multiaddr, code int, form string) (netip.AddrPort, error) {
	ap, rest, err := ToAddrPort(m)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if len(rest) != 1 || rest[0].Code() != code {
		return netip.AddrPort{}, fmt.Errorf("%w: %s is not %s", ErrAddrNotSupported, m, form)
	}
	if !ap.Addr().IsValid() || ap.Addr().IsUnspecified() || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%w: %s has no usable address", ErrAddrNotSupported, m)
	}
	return ap, nil
}

// FromAddrPort returns /ip4|ip6/…/udp/N followed by suffix (for example
// "/quic-v1" or "/ipv8"; "" for none).
func FromAddrPort(ap netip.AddrPort, suffix string) (ma.Multiaddr, error) {
	ip := ap.Addr().Unmap()
	family := "ip4"
	if ip.Is6() {
		family = "ip6"
	}
	s := fmt.Sprintf("/%s/%s/udp/%d%s", family, ip.WithZone("").String(), ap.Port(), suffix)
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, err
	}
	// The parser grows its slice by appending (to 4 components for 3): a
	// copy of exactly the components is what a Host keeps for every Conn.
	return append(make(ma.Multiaddr, 0, len(m)), m...), nil
}
