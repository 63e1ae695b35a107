//go:build !linux

package udp

import "net"

func listenSteered(cfg Config) (quicSock, portSock *net.UDPConn, err error) {
	return nil, nil, errSteeringUnsupported
}
