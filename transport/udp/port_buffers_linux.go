//go:build linux

package udp

import (
	"net"

	"golang.org/x/sys/unix"
)

// setBuffers asks for the buffer sizes, first with the FORCE options that
// ignore net.core.rmem_max/wmem_max (they need CAP_NET_ADMIN), then within
// those limits. The kernel may grant less; quic-go and the Stats drops show
// the effect.
func setBuffers(c *net.UDPConn, read, write int) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = control(rc, func(fd int) error {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, read) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, read)
		}
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, write) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, write)
		}
		return nil
	})
}
