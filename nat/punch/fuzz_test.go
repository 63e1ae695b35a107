package punch

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/ipv8/go-ipv8/nat"
)

func seedPackets() []Packet {
	id := ID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	info := Info{Seq: 3, Hold: 12, Traits: Traits{Mapping: nat.AddressAndPortDependent, Filtering: nat.AddressAndPortDependent,
		Alloc: AllocSequential, Step: 1, LastPort: 20004},
		Candidates: []netip.AddrPort{netip.MustParseAddrPort("198.51.100.21:20004"), netip.MustParseAddrPort("[2001:db8::7]:4242")}}
	return []Packet{
		{Kind: KindConnect, ID: id, Info: info},
		{Kind: KindReply, ID: id, Info: Info{Seq: 1, Traits: Traits{NoNAT: true, Filtering: nat.EndpointIndependent}, Candidates: []netip.AddrPort{}}},
		{Kind: KindSync, ID: id, Plan: Plan{Strategy: Birthday, Hard: HardResponder, Probes: 1024, Sockets: 256, Duration: 3000, Interval: 25}},
		{Kind: KindProbe, ID: id, Seq: 77},
		{Kind: KindProbe, Flags: FlagNominate, ID: id, Seq: 78},
		{Kind: KindAck, Flags: FlagNominate, ID: id, Seq: 78},
		{Kind: KindPing, ID: id, Seq: 1},
		{Kind: KindPong, ID: id, Seq: 1},
		{Kind: KindCancel, ID: id, Reason: 2},
	}
}

func TestPacketRoundTrip(t *testing.T) {
	for _, p := range seedPackets() {
		b := p.Append(nil)
		got, err := Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", p.Kind, err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Fatalf("%s: parsed %+v, want %+v", p.Kind, got, p)
		}
		for i := range len(b) {
			if _, err := Parse(b[:i]); err == nil {
				t.Fatalf("%s truncated to %d bytes parsed", p.Kind, i)
			}
		}
	}
	// More candidates than allowed are cut when sent and refused when read.
	p := Packet{Kind: KindConnect, Info: Info{Candidates: make([]netip.AddrPort, 12)}}
	for i := range p.Info.Candidates {
		p.Info.Candidates[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 1)
	}
	got, err := Parse(p.Append(nil))
	if err != nil || len(got.Info.Candidates) != MaxCandidates {
		t.Fatalf("%d candidates, %v", len(got.Info.Candidates), err)
	}
	b := p.Append(nil)
	b[HeaderLen+12] = MaxCandidates + 1
	if _, err := Parse(b); err == nil {
		t.Fatal("too many candidates parsed")
	}
}

func FuzzParsePunch(f *testing.F) {
	for _, p := range seedPackets() {
		f.Add(p.Append(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		again, err := Parse(p.Append(nil))
		if err != nil {
			t.Fatalf("re-encoded %s does not parse: %v", p.Kind, err)
		}
		for _, c := range p.Info.Candidates {
			if c.Addr().Is4In6() {
				return // re-encoded as IPv4
			}
		}
		if !reflect.DeepEqual(again, p) {
			t.Fatalf("round trip changed %+v to %+v", p, again)
		}
	})
}
