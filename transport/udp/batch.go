package udp

import (
	"net/netip"

	"github.com/ipv8/go-ipv8/transport"
)

// inMsg is one received datagram in a reader's reused buffers.
type inMsg struct {
	buf   []byte // owned by the port: Config.MaxPacketSize + 1, or groBufSize once GRO is on
	n     int
	addr  netip.AddrPort
	trunc bool // the datagram was longer than buf
	// seg is the size of the datagrams the kernel coalesced into buf[:n]
	// (UDP GRO; the last may be shorter), or 0 for one datagram.
	seg int
}

// reader fills ms[:n] with received datagrams, blocking for at least one.
type reader interface {
	read(ms []inMsg) (n int, err error)
}

// groReader is a reader that can have the kernel coalesce the datagrams of
// a flow (UDP GRO). The port turns it on only once it is busy (a read
// filled every buffer): coalesced datagrams need 64 KiB buffers, which an
// idle port (a simulation runs thousands) should not hold.
type groReader interface {
	reader
	// canGRO reports whether enableGRO may still succeed.
	canGRO() bool
	// enableGRO turns coalescing on; every buffer given to read from then
	// on must hold groBufSize bytes.
	enableGRO() bool
}

// batchWriter sends msgs from p's socket and reports how many went out.
type batchWriter interface {
	writeBatch(p *Port, msgs []Message) (int, error)
}

// connReader reads one datagram per call from any PacketConn.
type connReader struct{ pc transport.PacketConn }

func (r connReader) read(ms []inMsg) (int, error) {
	n, from, err := r.pc.ReadFromUDPAddrPort(ms[0].buf)
	if err != nil {
		return 0, err
	}
	ms[0].n, ms[0].addr, ms[0].trunc, ms[0].seg = n, from, false, 0
	return 1, nil
}

// loopWriter sends one datagram per call.
type loopWriter struct{}

func (loopWriter) writeBatch(p *Port, msgs []Message) (int, error) {
	for i, m := range msgs {
		if _, err := p.pc.WriteToUDPAddrPort(m.Buf, p.dest(m.Addr)); err != nil {
			return i, err
		}
	}
	return len(msgs), nil
}
