//go:build !linux

package udp

import "net"

// groBufSize is the read buffer a coalesced datagram needs; nothing is
// coalesced here.
const groBufSize = 1 << 16

// kernelIO returns the reader and batch writer for the port's socket c,
// and how many datagrams a read may return.
func kernelIO(c *net.UDPConn, _ Config) (reader, batchWriter, int) {
	return connReader{c}, loopWriter{}, 1
}
