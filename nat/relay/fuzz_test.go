package relay

import (
	"bytes"
	"testing"
)

// seedMsgs are one well-formed packet of each kind.
func seedMsgs() []Msg {
	obs4 := mustAddr("198.51.100.7:4242")
	obs6 := mustAddr("[2001:db8::1]:443")
	return []Msg{
		{Kind: KindHello, Nonce: 1},
		{Kind: KindChallenge, Nonce: 2, Cookie: [16]byte{1, 2, 3}, Observed: obs4},
		{Kind: KindReserve, Nonce: 3, Cookie: [16]byte{4}, Key: [32]byte{5}, Sig: [64]byte{6}},
		{Kind: KindReserved, Nonce: 4, TTL: 3600, Limit: Limit{120, 1 << 20}, Observed: obs6},
		{Kind: KindConnect, Nonce: 5, Cookie: [16]byte{7}, Key: [32]byte{8}, Target: [32]byte{9}, Sig: [64]byte{10}},
		{Kind: KindIncoming, Circuit: 77, Key: [32]byte{11}, Limit: Limit{60, 0}, Observed: obs4},
		{Kind: KindAccept, Circuit: 77},
		{Kind: KindConnected, Nonce: 6, Circuit: 77, Limit: Limit{60, 1 << 30}, Observed: obs4},
		{Kind: KindError, Nonce: 7, Circuit: 78, Code: CodeCircuitsPerIP},
		{Kind: KindClose, Circuit: 79, Code: CodeDataLimit},
		{Kind: KindPing, Nonce: 8},
		{Kind: KindPong, Nonce: 9, Observed: obs6},
	}
}

func TestMsgRoundTrip(t *testing.T) {
	for _, m := range seedMsgs() {
		b := m.Append(nil)
		got, err := ParseMsg(b)
		if err != nil {
			t.Fatalf("%s: %v", m.Kind, err)
		}
		if got != m {
			t.Fatalf("%s: parsed %+v, want %+v", m.Kind, got, m)
		}
		// Every truncation is an error, never a panic.
		for i := range len(b) {
			if _, err := ParseMsg(b[:i]); err == nil {
				t.Fatalf("%s truncated to %d bytes parsed", m.Kind, i)
			}
		}
	}
	if _, err := ParseMsg(AppendDataHeader(nil, 5)); err == nil {
		t.Fatal("DATA parsed as a message")
	}
	id, p, err := ParseData(append(AppendDataHeader(nil, 0xdeadbeef), "x"...))
	if err != nil || id != 0xdeadbeef || string(p) != "x" {
		t.Fatalf("data: %x %q %v", id, p, err)
	}
}

func FuzzParseMsg(f *testing.F) {
	for _, m := range seedMsgs() {
		f.Add(m.Append(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMsg(b)
		if err != nil {
			return
		}
		// What parses re-encodes to a packet that parses the same.
		again, err := ParseMsg(m.Append(nil))
		if err != nil {
			t.Fatalf("re-encoded %s does not parse: %v", m.Kind, err)
		}
		if m.Observed.Addr().Is4In6() {
			return // re-encoded as IPv4
		}
		if again != m {
			t.Fatalf("round trip changed %+v to %+v", m, again)
		}
	})
}

func FuzzParseData(f *testing.F) {
	f.Add(append(AppendDataHeader(nil, 1), "payload"...))
	f.Add(AppendDataHeader(nil, 0))
	f.Add([]byte{8, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, p, err := ParseData(b)
		if err != nil {
			return
		}
		re := append(AppendDataHeader(nil, id), p...)
		if !bytes.Equal(re[DataOverhead:], b[DataOverhead:]) || len(re) != len(b) {
			t.Fatalf("data round trip changed %x to %x", b, re)
		}
	})
}
