package udp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/transport"
)

// TestReceivePathAllocatesNothing measures allocations per packet on the
// whole receive path: socket read (recvmmsg on Linux), classify, count,
// handler. The sender's WriteToUDPAddrPort and the channel do not allocate,
// so anything counted is the port's.
func TestReceivePathAllocatesNothing(t *testing.T) {
	for _, kind := range portKinds() {
		t.Run(kind.name, func(t *testing.T) {
			p := kind.open(t, netip.MustParseAddrPort("[::]:0"))
			got := make(chan struct{}, 1)
			p.HandleType(transport.TypeNoiseData, func(pkt []byte, from netip.AddrPort) { got <- struct{}{} })
			s := newSender(t)
			pkt := []byte{transport.TypeNoiseData, 1, 2, 3}
			to := to4(p)
			timeout := time.NewTimer(waitFor)
			defer timeout.Stop()
			roundTrip := func() {
				if _, err := s.WriteToUDPAddrPort(pkt, to); err != nil {
					t.Fatal(err)
				}
				select {
				case <-got:
				case <-timeout.C:
					t.Fatal("packet lost")
				}
			}
			roundTrip() // warm up
			if allocs := testing.AllocsPerRun(200, roundTrip); allocs != 0 {
				t.Errorf("%v allocations per received packet, want 0", allocs)
			}
		})
	}
}

// TestDeliverAllocatesNothing checks every class's path through deliver,
// including the copy into the user-space demux's queue and quic-go's read
// of it (its *net.UDPAddr is cached per source).
func TestDeliverAllocatesNothing(t *testing.T) {
	p, err := Listen(Config{Addr: loopback4, DisableSteering: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	noop := func([]byte, netip.AddrPort) {}
	p.HandleSTUN(noop)
	p.HandleCommunity(noop)
	p.HandleType(transport.TypeNoiseData, noop)
	from := netip.MustParseAddrPort("[::ffff:192.0.2.1]:4242")
	stun, community := stunPacket(1), communityPacket(1)
	own, quic, invalid := []byte{transport.TypeNoiseData, 1}, []byte{0xC0, 1, 2, 3}, []byte{0x01}
	buf := make([]byte, 100)
	qc := p.QUICConn()
	run := func() {
		p.deliver(stun, from)
		p.deliver(community, from)
		p.deliver(own, from)
		p.deliver(invalid, from)
		p.deliver(quic, from)
		if _, _, err := qc.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
	}
	run()
	if allocs := testing.AllocsPerRun(1000, run); allocs != 0 {
		t.Errorf("%v allocations per round of five packets, want 0", allocs)
	}
}
