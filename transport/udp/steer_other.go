package udp

import (
	"errors"
	"net"
)

// errSteeringUnsupported means the system has no kernel steering; the port
// uses the user-space demux without a warning.
var errSteeringUnsupported = errors.New("udp: kernel steering needs Linux SO_ATTACH_REUSEPORT_CBPF")

func listenSteered(cfg Config) (quicSock, portSock *net.UDPConn, err error) {
	return nil, nil, errSteeringUnsupported
}
