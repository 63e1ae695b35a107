package peer

import (
	"errors"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func TestAddrInfoRoundTrip(t *testing.T) {
	s := "/ip4/127.0.0.1/udp/4242/quic-v1/p2p/" + libp2pID
	ai, err := AddrInfoFromString(s)
	if err != nil {
		t.Fatal(err)
	}
	if ai.ID.String() != libp2pID || len(ai.Addrs) != 1 || ai.Addrs[0].String() != "/ip4/127.0.0.1/udp/4242/quic-v1" {
		t.Fatalf("got %v", ai)
	}
	if got := ai.P2pAddrs()[0].String(); got != s {
		t.Fatalf("P2pAddrs %s", got)
	}
}

func TestIPv8MultiaddrProtocol(t *testing.T) {
	m, err := ma.NewMultiaddr("/ip6/::1/udp/9/ipv8/p2p/" + libp2pID)
	if err != nil {
		t.Fatal(err)
	}
	tr, id, err := SplitAddr(m)
	if err != nil || id.String() != libp2pID {
		t.Fatal(err, id)
	}
	if _, err := tr.ValueForProtocol(P_IPV8); err != nil {
		t.Fatalf("no ipv8 component in %s: %v", tr, err)
	}
	m2, err := ma.NewMultiaddrBytes(m.Bytes())
	if err != nil || !m2.Equal(m) {
		t.Fatal("binary round trip", err)
	}
}

func TestAddrInfoRejectsBadInput(t *testing.T) {
	for _, s := range []string{"", "/ip4/1.2.3.4/udp/1", "/ip4/999.1.1.1/udp/1/p2p/" + libp2pID, "not an address", "/ip4/1.2.3.4/udp/1/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"} {
		if _, err := AddrInfoFromString(s); !errors.Is(err, ErrInvalidAddr) {
			t.Errorf("%q: err %v", s, err)
		}
	}
}
