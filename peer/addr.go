package peer

import (
	"errors"
	"fmt"
	"strings"

	ma "github.com/multiformats/go-multiaddr"
)

// P_IPV8 is the multiaddr code of go-ipv8's raw-UDP transport
// (/ip4/…/udp/N/ipv8), taken from the multicodec private-use range
// (0x300000–0x3fffff).
const P_IPV8 = 0x300008

func init() {
	if err := ma.AddProtocol(ma.Protocol{
		Name:  "ipv8",
		Code:  P_IPV8,
		VCode: ma.CodeToVarint(P_IPV8),
		Size:  0,
	}); err != nil {
		panic(fmt.Sprintf("peer: registering the /ipv8 multiaddr protocol: %v", err))
	}
}

// ErrInvalidAddr is returned for a multiaddr that cannot name a peer.
var ErrInvalidAddr = errors.New("peer: invalid address")

// AddrInfo is a peer's ID with the multiaddrs it can be reached at (without
// their /p2p/ suffix).
type AddrInfo struct {
	ID    ID
	Addrs []ma.Multiaddr
}

// String prints the ID and addresses.
func (ai AddrInfo) String() string {
	parts := make([]string, len(ai.Addrs))
	for i, a := range ai.Addrs {
		parts[i] = a.String()
	}
	return fmt.Sprintf("{%s: [%s]}", ai.ID, strings.Join(parts, " "))
}

// P2pAddrs returns each address with /p2p/ID appended.
func (ai AddrInfo) P2pAddrs() []ma.Multiaddr {
	if ai.ID == "" {
		return nil
	}
	p2p, err := ma.NewComponent("p2p", ai.ID.String())
	if err != nil {
		return nil
	}
	out := make([]ma.Multiaddr, 0, len(ai.Addrs))
	for _, a := range ai.Addrs {
		out = append(out, a.Encapsulate(p2p.Multiaddr()))
	}
	return out
}

// SplitAddr splits a multiaddr ending in /p2p/ID into its transport part and
// the ID. A multiaddr without /p2p/ returns an empty ID.
func SplitAddr(m ma.Multiaddr) (ma.Multiaddr, ID, error) {
	if len(m) == 0 {
		return nil, "", fmt.Errorf("%w: empty multiaddr", ErrInvalidAddr)
	}
	transport, last := ma.SplitLast(m)
	if last == nil || last.Code() != ma.P_P2P {
		return m, "", nil
	}
	id, err := IDFromBytes(last.RawValue())
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: %v", ErrInvalidAddr, m, err)
	}
	return transport, id, nil
}

// AddrInfoFromP2pAddr reads a multiaddr that ends in /p2p/ID.
func AddrInfoFromP2pAddr(m ma.Multiaddr) (*AddrInfo, error) {
	transport, id, err := SplitAddr(m)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, fmt.Errorf("%w: %s has no /p2p/ component naming the peer", ErrInvalidAddr, m)
	}
	ai := &AddrInfo{ID: id}
	if len(transport) > 0 {
		ai.Addrs = []ma.Multiaddr{transport}
	}
	return ai, nil
}

// AddrInfoFromString parses the text form of a multiaddr ending in /p2p/ID.
func AddrInfoFromString(s string) (*AddrInfo, error) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidAddr, s, err)
	}
	return AddrInfoFromP2pAddr(m)
}
