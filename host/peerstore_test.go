package host

import (
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipv8/go-ipv8/peer"
)

func TestPeerstoreExpiresAddrs(t *testing.T) {
	ps := NewPeerstore(10)
	now := time.Unix(1000, 0)
	ps.now = func() time.Time { return now }
	k, _ := peer.GenerateKey(nil)
	a1, a2 := ma.StringCast("/ip4/1.1.1.1/udp/1/quic-v1"), ma.StringCast("/ip4/2.2.2.2/udp/2/quic-v1")
	ps.AddAddrs(k.ID(), []ma.Multiaddr{a1}, time.Minute)
	ps.AddAddrs(k.ID(), []ma.Multiaddr{a2}, ConnectedAddrTTL)
	if n := len(ps.Addrs(k.ID())); n != 2 {
		t.Fatalf("%d addrs", n)
	}
	now = now.Add(2 * time.Minute)
	if got := ps.Addrs(k.ID()); len(got) != 1 || !got[0].Equal(a2) {
		t.Fatalf("after expiry: %v", got)
	}
	ps.UpdateAddrs(k.ID(), ConnectedAddrTTL, RecentlyConnectedAddrTTL)
	now = now.Add(RecentlyConnectedAddrTTL + time.Second)
	if got := ps.Addrs(k.ID()); len(got) != 0 {
		t.Fatalf("after disconnect TTL: %v", got)
	}
}

func TestPeerstoreIsBounded(t *testing.T) {
	ps := NewPeerstore(3)
	var ids []peer.ID
	for range 5 {
		k, _ := peer.GenerateKey(nil)
		ids = append(ids, k.ID())
		ps.Put(k.ID(), "n", 1)
	}
	if ps.Len() != 3 {
		t.Fatalf("len %d", ps.Len())
	}
	if _, ok := ps.Get(ids[0], "n"); ok {
		t.Fatal("oldest peer kept")
	}
	if v, ok := ps.Get(ids[4], "n"); !ok || v != 1 {
		t.Fatal("newest peer lost")
	}
}
