//go:build linux

package udp

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The members of the port's SO_REUSEPORT group, by index. The kernel numbers
// members in the order they bind, so quic-go's socket is bound first.
const (
	quicSocketIndex = 0
	portSocketIndex = 1
)

// steerProgram is the classic BPF program the kernel runs for every
// datagram to the port, choosing the group member by index. The kernel runs
// it with the UDP header already pulled, so offset 0 is the first payload
// byte (TestSteeringReadsFirstPayloadByte checks this). An empty datagram
// would make the byte load fail (cBPF then returns 0, quic-go's socket), so
// its length is tested first.
//
//	ld   len                 ; payload length
//	jeq  #0, port            ; empty: ours, counted as invalid
//	ldb  [0]                 ; first payload byte
//	jge  #0x40, quic, port   ; 0x40–0xFF is QUIC (Classify)
//	quic: ret #0
//	port: ret #1
func steerProgram() ([]bpf.RawInstruction, error) {
	return bpf.Assemble([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtLen},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: 3},
		bpf.LoadAbsolute{Off: 0, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: quicMin, SkipFalse: 1},
		bpf.RetConstant{Val: quicSocketIndex},
		bpf.RetConstant{Val: portSocketIndex},
	})
}

func attachSteering(fd int, prog []bpf.RawInstruction) error {
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &fprog)
}

// listenSteered binds quic-go's socket and then the port's socket to the
// same address in one SO_REUSEPORT group steered by steerProgram.
//
// The program is attached to the first socket before it binds. A socket that
// already carries a reuseport group cannot join another one, so the bind is
// exclusive: it fails if any socket holds the port, and with port 0 the
// kernel picks a port nobody holds, even one of the same user's reuseport
// sockets (without the early attach, two ports of one process could land in
// one group). After that, only a socket of the same user can join (the
// kernel requires a matching uid for SO_REUSEPORT); it gets index 2 or
// higher and the program never selects it.
func listenSteered(cfg Config) (quicSock, portSock *net.UDPConn, err error) {
	prog, err := steerProgram()
	if err != nil {
		return nil, nil, &steerError{err}
	}
	var setupErr error // an error from Control is a steering problem, not a bind problem
	first := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		setupErr = control(rc, func(fd int) error {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
				return fmt.Errorf("SO_REUSEPORT: %w", err)
			}
			if err := attachSteering(fd, prog); err != nil {
				return fmt.Errorf("SO_ATTACH_REUSEPORT_CBPF: %w", err)
			}
			return nil
		})
		return setupErr
	}}
	netw, addr := network(cfg.Addr)
	pc, err := first.ListenPacket(context.Background(), netw, addr.String())
	if err != nil {
		if setupErr != nil {
			return nil, nil, &steerError{setupErr}
		}
		return nil, nil, err
	}
	quicSock = pc.(*net.UDPConn)

	// The second socket binds to the port the first one got (port 0 case).
	second := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return control(rc, func(fd int) error {
			return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
	}}
	addr = quicSock.LocalAddr().(*net.UDPAddr).AddrPort()
	pc, err = second.ListenPacket(context.Background(), netw, addr.String())
	if err != nil {
		quicSock.Close()
		return nil, nil, &steerError{fmt.Errorf("second socket on %v: %w", addr, err)}
	}
	portSock = pc.(*net.UDPConn)
	setBuffers(quicSock, cfg.ReadBuffer, cfg.WriteBuffer)
	setBuffers(portSock, cfg.ReadBuffer, cfg.WriteBuffer)
	return quicSock, portSock, nil
}

// control runs f on rc's file descriptor.
func control(rc syscall.RawConn, f func(fd int) error) error {
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
