//go:build !linux

package udp

import "net"

// setBuffers asks for the buffer sizes; the system may grant less.
func setBuffers(c *net.UDPConn, read, write int) {
	_ = c.SetReadBuffer(read)
	_ = c.SetWriteBuffer(write)
}
