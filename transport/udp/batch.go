package udp

import (
	"net/netip"

	"github.com/ipv8/go-ipv8/transport"
)

// inMsg is one received datagram in a reader's reused buffers.
type inMsg struct {
	buf   []byte // capacity Config.MaxPacketSize, owned by the port
	n     int
	addr  netip.AddrPort
	trunc bool // the datagram was longer than buf
}

// reader fills ms[:n] with received datagrams, blocking for at least one.
type reader interface {
	read(ms []inMsg) (n int, err error)
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
	ms[0].n, ms[0].addr, ms[0].trunc = n, from, false
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
