package identify

import (
	"bytes"
	"errors"
	"testing"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocol"
)

func TestInfoRoundTrip(t *testing.T) {
	k, _ := peer.GenerateKey(nil)
	in := &Info{
		PublicKey:       peer.MarshalLibp2pPublicKey(k.Public().Ed25519()),
		ListenAddrs:     []ma.Multiaddr{ma.StringCast("/ip4/1.2.3.4/udp/5/quic-v1"), ma.StringCast("/ip6/::1/udp/6/ipv8")},
		Protocols:       []protocol.ID{"/ipfs/ping/1.0.0", "/x/1"},
		ObservedAddr:    ma.StringCast("/ip4/9.9.9.9/udp/7/quic-v1"),
		ProtocolVersion: ProtocolVersion,
		AgentVersion:    "go-ipv8/test",
	}
	var buf bytes.Buffer
	if err := Write(&buf, in); err != nil {
		t.Fatal(err)
	}
	out, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.PublicKey, in.PublicKey) || len(out.ListenAddrs) != 2 || !out.ListenAddrs[1].Equal(in.ListenAddrs[1]) ||
		!out.ObservedAddr.Equal(in.ObservedAddr) || out.AgentVersion != in.AgentVersion || out.ProtocolVersion != in.ProtocolVersion ||
		len(out.Protocols) != 2 || out.Protocols[1] != "/x/1" {
		t.Fatalf("round trip: %+v", out)
	}
	id, err := out.PeerID()
	if err != nil || id != k.ID() {
		t.Fatalf("PeerID %v %v", id, err)
	}
}

func TestReadRejectsOversizedMessage(t *testing.T) {
	b := []byte{0xff, 0xff, 0x03} // 65535
	if _, err := Read(bytes.NewReader(b)); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("err %v", err)
	}
}

func TestParseSkipsUnknownFieldsAndBadAddrs(t *testing.T) {
	// field 9 varint, field 2 with garbage multiaddr, field 6 agent.
	b := []byte{9<<3 | 0, 5, 2<<3 | 2, 2, 0xff, 0xff, 6<<3 | 2, 1, 'a'}
	info, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.ListenAddrs) != 0 || info.AgentVersion != "a" {
		t.Fatalf("%+v", info)
	}
}

func FuzzParse(f *testing.F) {
	k, _ := peer.GenerateKey(nil)
	f.Add((&Info{PublicKey: peer.MarshalLibp2pPublicKey(k.Public().Ed25519()), AgentVersion: "x",
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/1.2.3.4/udp/5/quic-v1")}, Protocols: []protocol.ID{"/a"}}).Append(nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := Parse(b)
		if err != nil {
			return
		}
		// What parses re-encodes and parses to the same lists.
		again, err := Parse(info.Append(nil))
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if len(again.ListenAddrs) != len(info.ListenAddrs) || len(again.Protocols) != len(info.Protocols) {
			t.Fatal("round trip changed the message")
		}
	})
}
