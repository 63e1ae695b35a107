//go:build !linux

package plainsession

import (
	"errors"
	"net"
	"net/netip"
)

const gsoSupported = false

const maxGSOSegments = 1

func writeGSO(c *net.UDPConn, buf []byte, seg int, addr netip.AddrPort, oob []byte) error {
	return errors.New("plainsession: no GSO on this system")
}
