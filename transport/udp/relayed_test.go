package udp

import (
	"errors"
	"testing"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
)

func mustID(t testing.TB) peer.ID {
	t.Helper()
	k, err := peer.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k.ID()
}

func TestParseCircuitAddrReadsRelayAndTarget(t *testing.T) {
	relay, target := mustID(t), mustID(t)
	base := "/ip4/192.0.2.1/udp/4000/ipv8/p2p/" + relay.String() + "/p2p-circuit"
	for _, tc := range []struct {
		addr   string
		target peer.ID
	}{
		{base, ""},
		{base + "/p2p/" + target.String(), target},
		{"/ip6/2001:db8::1/udp/4000/ipv8/p2p/" + relay.String() + "/p2p-circuit", ""},
	} {
		ca, err := parseCircuitAddr(ma.StringCast(tc.addr))
		if err != nil {
			t.Fatalf("%s: %v", tc.addr, err)
		}
		if ca.relay != relay || ca.target != tc.target || ca.relayAddr.Port() != 4000 {
			t.Fatalf("%s: got %+v", tc.addr, ca)
		}
		if !IsCircuitAddr(ma.StringCast(tc.addr)) {
			t.Fatalf("%s is a circuit address", tc.addr)
		}
	}
}

func TestParseCircuitAddrRejectsOtherForms(t *testing.T) {
	relay := mustID(t)
	for _, s := range []string{
		"/ip4/192.0.2.1/udp/4000/ipv8",                                                    // direct
		"/ip4/192.0.2.1/udp/4000/quic-v1/p2p/" + relay.String() + "/p2p-circuit",          // another transport
		"/ip4/192.0.2.1/udp/4000/ipv8/p2p-circuit",                                        // no relay ID
		"/ip4/0.0.0.0/udp/4000/ipv8/p2p/" + relay.String() + "/p2p-circuit",               // unspecified relay
		"/ip4/192.0.2.1/udp/0/ipv8/p2p/" + relay.String() + "/p2p-circuit",                // port 0
		"/ip4/192.0.2.1/udp/4000/ipv8/p2p/" + relay.String() + "/p2p-circuit/ipv8",        // junk after the marker
		"/ip4/192.0.2.1/udp/4000/ipv8/p2p/" + relay.String() + "/p2p-circuit/p2p-circuit", // twice
	} {
		if _, err := parseCircuitAddr(ma.StringCast(s)); !errors.Is(err, transport.ErrAddrNotSupported) {
			t.Errorf("%s: err = %v, want ErrAddrNotSupported", s, err)
		}
	}
}

// A transport without a CircuitDialer does not claim relayed addresses, so
// the host does not pick it for them.
func TestCanDialCircuitNeedsACircuitDialer(t *testing.T) {
	tr := &Transport{}
	a := ma.StringCast("/ip4/192.0.2.1/udp/4000/ipv8/p2p/" + mustID(t).String() + "/p2p-circuit")
	if tr.CanDial(a) {
		t.Fatal("CanDial without a CircuitDialer")
	}
}

// FuzzParseCircuitAddr: relayed addresses arrive from peers (identify's
// listen addresses); any multiaddr bytes parse or fail cleanly.
func FuzzParseCircuitAddr(f *testing.F) {
	relay := mustID(f)
	f.Add(ma.StringCast("/ip4/192.0.2.1/udp/4000/ipv8/p2p/" + relay.String() + "/p2p-circuit").Bytes())
	f.Add(ma.StringCast("/ip4/192.0.2.1/udp/4000/ipv8/p2p/" + relay.String() + "/p2p-circuit/p2p/" + relay.String()).Bytes())
	f.Add(ma.StringCast("/ip4/192.0.2.1/udp/4000/ipv8").Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			return
		}
		ca, err := parseCircuitAddr(m)
		if err != nil {
			return
		}
		if !IsCircuitAddr(m) || ca.relay == "" || !ca.relayAddr.IsValid() {
			t.Fatalf("%s parsed as %+v", m, ca)
		}
	})
}
