package udp

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/internal/netsim"
	"github.com/ipv8/go-ipv8/transport"
)

func netsimPort(t *testing.T, h *netsim.Host, port uint16) *Port {
	t.Helper()
	c, err := h.ListenUDP(port)
	if err != nil {
		t.Fatal(err)
	}
	p := NewPort(c, Config{})
	t.Cleanup(func() { p.Close() })
	return p
}

// TestNetsimVirtualTimeDelivery runs two ports on a virtual-time netsim
// network, where conns deliver through callbacks and never block: every
// class reaches its handler when the network runs, with the sender's
// address, and a roaming host's port reports its new address.
func TestNetsimVirtualTimeDelivery(t *testing.T) {
	n := netsim.New(netsim.Config{Seed: 1, Virtual: true})
	defer n.Close()
	ha := n.NewHost(netip.MustParseAddr("192.0.2.1"), netsim.Link{Latency: 10 * time.Millisecond})
	hb := n.NewHost(netip.MustParseAddr("192.0.2.2"), netsim.Link{Latency: 10 * time.Millisecond})
	a, b := netsimPort(t, ha, 4000), netsimPort(t, hb, 5000)

	var stun, community, own recorder
	b.HandleSTUN(stun.handle)
	b.HandleCommunity(community.handle)
	b.HandleType(transport.TypeNoiseInitiation, own.handle)
	for _, pkt := range [][]byte{stunPacket(1), communityPacket(2), {transport.TypeNoiseInitiation, 3}, {0xC0, 4}} {
		if err := a.WriteTo(pkt, b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	n.RunFor(time.Second)
	for name, r := range map[string]*recorder{"STUN": &stun, "community": &community, "own": &own} {
		got := r.get()
		if len(got) != 1 || got[0].from != netip.MustParseAddrPort("192.0.2.1:4000") {
			t.Errorf("%s handler got %v", name, got)
		}
	}
	if s := b.Stats(); s.In[ClassQUIC].Packets != 1 {
		t.Errorf("QUIC packets in = %d, want 1 (queued for QUICConn)", s.In[ClassQUIC].Packets)
	}

	ha.SetAddr(netip.MustParseAddr("192.0.2.77"))
	if got := a.LocalAddr(); got != netip.MustParseAddrPort("192.0.2.77:4000") {
		t.Errorf("after the host moved, LocalAddr = %v", got)
	}
}

// TestNetsimQUICEchoOverDemux runs quic-go over two NewPort ports on a
// lossy real-time netsim network, with STUN and own-type traffic beside it:
// the user-space demux carries the QUIC handshake and a byte-exact echo.
func TestNetsimQUICEchoOverDemux(t *testing.T) {
	t.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	n := netsim.New(netsim.Config{Seed: 7})
	defer n.Close()
	link := netsim.Link{Latency: 2 * time.Millisecond, Loss: 0.02, Reorder: 0.02, Bandwidth: 20_000_000}
	srv := netsimPort(t, n.NewHost(netip.MustParseAddr("192.0.2.10"), link), 4433)
	cli := netsimPort(t, n.NewHost(netip.MustParseAddr("192.0.2.20"), link), 0)
	var own atomic.Int64
	srv.HandleType(transport.TypePunch, func([]byte, netip.AddrPort) { own.Add(1) })

	q := newQUICPair(t, srv.QUICConn(), cli.QUICConn(), srv.LocalAddr())
	go func() {
		s, err := q.serverConn.AcceptStream(context.Background())
		if err != nil {
			return
		}
		io.Copy(s, s)
		s.Close()
	}()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				cli.WriteTo([]byte{transport.TypePunch}, srv.LocalAddr())
			}
		}
	}()
	data := make([]byte, 256<<10)
	rand.Read(data)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	str, err := q.conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	str.SetDeadline(time.Now().Add(waitFor))
	go func() {
		str.Write(data)
		str.Close()
	}()
	back, err := io.ReadAll(str)
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("echo over netsim: %d of %d bytes, %v", len(back), len(data), err)
	}
	if own.Load() == 0 {
		t.Error("no own-type packet reached the server while QUIC ran")
	}
	if s := srv.Stats(); s.In[ClassQUIC].Packets == 0 || s.Drops.QUICQueueFull != 0 {
		t.Errorf("server stats: %+v", s)
	}
}
