package udp

import "sync/atomic"

// Counter is a number of packets and their bytes.
type Counter struct {
	Packets, Bytes uint64
}

// Drops counts packets the port received and threw away, by reason.
type Drops struct {
	Invalid       uint64 // ClassInvalid: empty, or 0x00–0x03 that is neither STUN nor IPv8
	Unhandled     uint64 // a valid class or type with no handler registered
	Truncated     uint64 // longer than Config.MaxPacketSize
	QUICQueueFull uint64 // user-space demux: quic-go did not keep up, its queue was full
	QUICClosed    uint64 // QUIC-class packet after QUICConn was closed
	Misrouted     uint64 // steering on: a QUIC-class packet reached the port's socket anyway
}

// Offload counts what the kernel's UDP segmentation offloads carried
// (Linux; see Config.DisableGSO and DisableGRO).
type Offload struct {
	GSOSends    uint64 // sends that carried a run of datagrams as one (UDP_SEGMENT)
	GSOSegments uint64 // the datagrams those sends carried
	GROReads    uint64 // received buffers that held several coalesced datagrams (UDP_GRO)
	GROSegments uint64 // the datagrams those buffers held
}

// PortStats is a snapshot of a port's traffic. In and Out are indexed by
// Class. In counts every packet read, dropped or not. Out counts what the
// port sent: WriteTo, WriteBatch and, when not steered, quic-go's writes
// through QUICConn (when steered, quic-go writes on its own socket and the
// port does not see them).
type PortStats struct {
	In, Out     [NumClasses]Counter
	Drops       Drops
	ReadErrors  uint64 // socket read errors other than closing
	WriteErrors uint64 // failed sends
	Offload     Offload
}

type atomicCounter struct {
	packets, bytes atomic.Uint64
}

func (c *atomicCounter) add(n int) {
	c.packets.Add(1)
	c.bytes.Add(uint64(n))
}

func (c *atomicCounter) load() Counter {
	return Counter{Packets: c.packets.Load(), Bytes: c.bytes.Load()}
}

// counters is the live form of PortStats; the read goroutine and writers
// update it, Stats reads it.
type counters struct {
	in, out [NumClasses]atomicCounter

	invalid, unhandled, truncated     atomic.Uint64
	quicQueueFull, quicClosed, misrtd atomic.Uint64
	readErrors, writeErrors           atomic.Uint64

	gsoSends, gsoSegments atomic.Uint64
	groReads, groSegments atomic.Uint64
}

func (c *counters) snapshot() PortStats {
	var s PortStats
	for i := range s.In {
		s.In[i] = c.in[i].load()
		s.Out[i] = c.out[i].load()
	}
	s.Drops = Drops{
		Invalid:       c.invalid.Load(),
		Unhandled:     c.unhandled.Load(),
		Truncated:     c.truncated.Load(),
		QUICQueueFull: c.quicQueueFull.Load(),
		QUICClosed:    c.quicClosed.Load(),
		Misrouted:     c.misrtd.Load(),
	}
	s.ReadErrors = c.readErrors.Load()
	s.WriteErrors = c.writeErrors.Load()
	s.Offload = Offload{
		GSOSends:    c.gsoSends.Load(),
		GSOSegments: c.gsoSegments.Load(),
		GROReads:    c.groReads.Load(),
		GROSegments: c.groSegments.Load(),
	}
	return s
}
