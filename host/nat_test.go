package host

import (
	"slices"
	"testing"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipv8/go-ipv8/peer"
)

// Relayed addresses are dialled after every direct one, whatever their
// transport or scope: a relay costs its capacity and a round trip.
func TestAddrRankDialsRelayedAfterDirect(t *testing.T) {
	k, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	relayed := ma.StringCast("/ip4/127.0.0.1/udp/4000/ipv8/p2p/" + k.ID().String() + "/p2p-circuit")
	direct := []ma.Multiaddr{
		ma.StringCast("/ip4/198.51.100.7/udp/4242/quic-v1"), // public QUIC: the worst direct rank
		ma.StringCast("/ip4/10.0.0.2/udp/4242/ipv8"),
		ma.StringCast("/ip4/127.0.0.1/udp/4242/ipv8"),
	}
	addrs := append([]ma.Multiaddr{relayed}, direct...)
	slices.SortStableFunc(addrs, func(a, b ma.Multiaddr) int { return addrRank(a) - addrRank(b) })
	if !addrs[len(addrs)-1].Equal(relayed) {
		t.Fatalf("dial order %v: the relayed address must come last", addrs)
	}
	if !addrs[0].Equal(direct[2]) {
		t.Fatalf("dial order %v: loopback raw-UDP first", addrs)
	}
}
