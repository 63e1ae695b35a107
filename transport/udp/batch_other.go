//go:build !linux

package udp

import "net"

// kernelIO returns the reader and batch writer for the port's socket c,
// and how many datagrams a read may return.
func kernelIO(c *net.UDPConn) (reader, batchWriter, int) {
	return connReader{c}, loopWriter{}, 1
}
