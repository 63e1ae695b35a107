package community

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/internal/pyvectors"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
)

// recPort is a transport.Port that records what is sent.
type recPort struct {
	mu   sync.Mutex
	sent int
	h    transport.PacketHandler
}

func (p *recPort) LocalAddr() netip.AddrPort { return netip.MustParseAddrPort("127.0.0.1:18091") }
func (p *recPort) WriteTo([]byte, netip.AddrPort) error {
	p.mu.Lock()
	p.sent++
	p.mu.Unlock()
	return nil
}
func (p *recPort) HandleType(byte, transport.PacketHandler)  {}
func (p *recPort) HandleSTUN(transport.PacketHandler)        {}
func (p *recPort) HandleCommunity(h transport.PacketHandler) { p.h = h }

// FuzzCommunityReceive feeds arbitrary packets to a community (the ID of
// py-ipv8's vectors, which seed the corpus): nothing may panic, and a
// packet may add a peer or a walkable address only if it is a signed
// message whose signature verifies.
func FuzzCommunityReceive(f *testing.F) {
	v := pyvectors.Must()
	var cid wire.CommunityID
	copy(cid[:], v.Bytes("community_id"))
	key, err := peer.NewKeyFromSeed(make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		port := &recPort{}
		ep := NewEndpoint(port, NewKeyCache(8))
		c, err := New(ep, Config{ID: cid, Key: key, AnswerOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		port.h(pkt, netip.MustParseAddrPort("1.2.3.4:18090"))
		ep.Flush(t.Context())
		c.mu.Lock()
		grew := c.net.count() > 0 || len(c.net.walkList) > 0
		c.mu.Unlock()
		if !grew {
			return
		}
		s, err := wire.ParseSigned(pkt)
		if err != nil {
			t.Fatalf("unparsable packet added a peer: %v", err)
		}
		pub, err := peer.ParseLibNaCLPK(s.KeyBin)
		if err != nil || s.Verify(pub) != nil {
			t.Fatal("packet without a valid signature added a peer")
		}
	})
}
