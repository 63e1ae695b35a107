//go:build linux

package plainsession

import (
	"encoding/binary"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// gsoSupported: Linux can send many equal-sized datagrams in one call
// (UDP_SEGMENT), the way quic-go sends; the kernel splits them late.
const gsoSupported = true

// maxGSOSegments is the kernel's limit of segments per call.
const maxGSOSegments = 64

// gsoOOB returns the control message that asks for segments of size seg.
func gsoOOB(b []byte, seg int) []byte {
	b = b[:unix.CmsgSpace(2)]
	// struct cmsghdr { len uint64; level int32; type int32 } + data
	binary.NativeEndian.PutUint64(b[0:8], uint64(unix.CmsgLen(2)))
	binary.NativeEndian.PutUint32(b[8:12], unix.SOL_UDP)
	binary.NativeEndian.PutUint32(b[12:16], unix.UDP_SEGMENT)
	binary.NativeEndian.PutUint16(b[16:18], uint16(seg))
	return b
}

func writeGSO(c *net.UDPConn, buf []byte, seg int, addr netip.AddrPort, oob []byte) error {
	_, _, err := c.WriteMsgUDPAddrPort(buf, gsoOOB(oob, seg), addr)
	return err
}
