package community_test

import (
	"log/slog"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/discovery/community"
	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport/udp"
)

// On real kernel sockets (the default, queued endpoint): a burst of signed
// messages is delivered whole, and a forged one among them is dropped and
// counted.
func TestRealUDPBurstIsVerifiedAndForgeryDropped(t *testing.T) {
	listen := func() *udp.Port {
		p, err := udp.Listen(udp.Config{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	pa, pb := listen(), listen()
	var cid wire.CommunityID
	copy(cid[:], "udp burst test")
	ka, _ := peer.GenerateKey(nil)
	kb, _ := peer.GenerateKey(nil)
	a, err := community.New(community.NewEndpoint(pa, community.NewKeyCache(16)), community.Config{ID: cid, Key: ka, AnswerOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	epB := community.NewEndpoint(pb, community.NewKeyCache(16))
	b, err := community.New(epB, community.Config{ID: cid, Key: kb, AnswerOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	b.Handle(1, true, func(m *community.Message) {
		if m.Mid == a.Mid() {
			got.Add(1)
		}
	})
	const n = 200
	for i := range n {
		if err := a.Send(pb.LocalAddr(), 1, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if i == n/2 {
			forged := a.Signer().AppendSigned(nil, cid, 1, 99, []byte("forged"))
			forged[len(forged)-70] ^= 1 // the payload, after signing
			pa.WriteTo(forged, pb.LocalAddr())
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for (got.Load() < n || b.Stats().BadSignature < 1) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	epB.Flush(t.Context())
	if got.Load() != n || b.Stats().BadSignature != 1 {
		t.Fatalf("delivered %d of %d, bad signatures %d (stats %+v, %+v)", got.Load(), n, b.Stats().BadSignature, b.Stats(), epB.Stats())
	}
}
