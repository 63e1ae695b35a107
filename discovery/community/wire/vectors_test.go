package wire

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/ipv8/go-ipv8/internal/pyvectors"
	"github.com/ipv8/go-ipv8/peer"
)

// The vectors were produced by py-ipv8 3.2 with the key below; Ed25519
// signatures are deterministic, so encoding the same inputs must give the
// same bytes.

func vectorKey(t testing.TB, v pyvectors.Vectors) (*peer.PrivateKey, CommunityID) {
	t.Helper()
	k, err := peer.NewKeyFromParts(v.Bytes("ed25519_seed"), v.Bytes("x25519_secret"))
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Public().MarshalLibNaCLPK(); !bytes.Equal(got, v.Bytes("public_key_bin")) {
		t.Fatalf("public key %x, vector %x", got, v.Bytes("public_key_bin"))
	}
	var cid CommunityID
	copy(cid[:], v.Bytes("community_id"))
	return k, cid
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestSignedVectorsEncodeByteForByte(t *testing.T) {
	v := pyvectors.Must()
	k, cid := vectorKey(t, v)
	s := NewSigner(k)
	gt := v.Uint("global_time")

	req := IntroductionRequest{
		Destination: ap("127.0.0.1:18091"), SourceLAN: ap("192.168.1.2:18090"), SourceWAN: ap("1.2.3.4:18090"),
		Advice: true, SupportsNewStyle: true, Identifier: 1,
	}
	resp := IntroductionResponse{
		Destination: ap("1.2.3.4:18090"), SourceLAN: ap("192.168.1.3:18091"), SourceWAN: ap("5.6.7.8:18091"),
		LANIntroduction: ap("10.0.0.9:1000"), WANIntroduction: ap("9.9.9.9:1001"),
		SupportsNewStyle: true, Identifier: 1,
	}
	punc := Puncture{SourceLAN: ap("10.0.0.9:1000"), SourceWAN: ap("9.9.9.9:1001"), Identifier: 1}
	hello, err := Marshal(nil, struct{ Text string }{"hello from py-ipv8"})
	if err != nil {
		t.Fatal(err)
	}
	numbers, err := Marshal(nil, struct {
		A int64
		B bool
		C []byte
	}{7, true, []byte{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	reqPayload, err := req.Append(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	respPayload, err := resp.Append(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	puncPayload, err := punc.Append(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		vector  string
		msgID   byte
		payload []byte
	}{
		{"introduction_request", MsgIntroductionRequest, reqPayload},
		{"introduction_response", MsgIntroductionResponse, respPayload},
		{"puncture", MsgPuncture, puncPayload},
		{"hello_message", 1, hello},
		{"numbers_message", 2, numbers},
	} {
		t.Run(tc.vector, func(t *testing.T) {
			got := s.AppendSigned(nil, cid, tc.msgID, gt, tc.payload)
			if want := v.Bytes(tc.vector); !bytes.Equal(got, want) {
				t.Fatalf("encoded\n%x\nvector\n%x", got, want)
			}
		})
	}
	if want := v.Bytes("hello_payload"); !bytes.Equal(hello, want) {
		t.Errorf("hello payload %x, vector %x", hello, want)
	}
	if want := v.Bytes("numbers_payload"); !bytes.Equal(numbers, want) {
		t.Errorf("numbers payload %x, vector %x", numbers, want)
	}
}

func TestSignedVectorsDecodeAndVerify(t *testing.T) {
	v := pyvectors.Must()
	k, cid := vectorKey(t, v)
	for _, name := range []string{"introduction_request", "introduction_response", "puncture", "hello_message", "numbers_message"} {
		t.Run(name, func(t *testing.T) {
			pkt := v.Bytes(name)
			s, err := ParseSigned(pkt)
			if err != nil {
				t.Fatal(err)
			}
			if s.Community != cid || s.GlobalTime != v.Uint("global_time") {
				t.Fatalf("community %s time %d", s.Community, s.GlobalTime)
			}
			pub, err := peer.ParseLibNaCLPK(s.KeyBin)
			if err != nil {
				t.Fatal(err)
			}
			if !pub.Equal(k.Public()) {
				t.Fatal("key in packet differs from the vector key")
			}
			if mid := pub.Mid(); hex.EncodeToString(mid[:]) != v["mid"] {
				t.Fatalf("mid %x, vector %s", mid, v["mid"])
			}
			if err := s.Verify(pub); err != nil {
				t.Fatalf("signature of py-ipv8's packet does not verify: %v", err)
			}
			// One flipped bit anywhere in the signed part breaks it.
			bad := bytes.Clone(pkt)
			bad[len(bad)-SigSize-1] ^= 0x01
			sb, err := ParseSigned(bad)
			if err != nil {
				t.Fatal(err)
			}
			if err := sb.Verify(pub); err != ErrBadSignature {
				t.Fatalf("tampered packet: err %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestDiscoveryVectorsDecodeToTheirFields(t *testing.T) {
	v := pyvectors.Must()

	s, _ := ParseSigned(v.Bytes("introduction_request"))
	req, err := ParseIntroductionRequest(s.Payload, false)
	if err != nil {
		t.Fatal(err)
	}
	wantReq := IntroductionRequest{
		Destination: ap("127.0.0.1:18091"), SourceLAN: ap("192.168.1.2:18090"), SourceWAN: ap("1.2.3.4:18090"),
		ConnType: ConnUnknown, SupportsNewStyle: true, Advice: true, Identifier: 1, Extra: []byte{},
	}
	if !equalReq(req, wantReq) {
		t.Errorf("request %+v, want %+v", req, wantReq)
	}

	s, _ = ParseSigned(v.Bytes("introduction_response"))
	resp, err := ParseIntroductionResponse(s.Payload, false)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Destination != ap("1.2.3.4:18090") || resp.SourceLAN != ap("192.168.1.3:18091") ||
		resp.SourceWAN != ap("5.6.7.8:18091") || resp.LANIntroduction != ap("10.0.0.9:1000") ||
		resp.WANIntroduction != ap("9.9.9.9:1001") || resp.Identifier != 1 || resp.ConnType != ConnUnknown ||
		!resp.SupportsNewStyle || resp.IntroSupportsNewStyle || resp.PeerLimitReached || len(resp.Extra) != 0 {
		t.Errorf("response %+v", resp)
	}

	s, _ = ParseSigned(v.Bytes("puncture"))
	p, err := ParsePuncture(s.Payload, false)
	if err != nil {
		t.Fatal(err)
	}
	if p != (Puncture{SourceLAN: ap("10.0.0.9:1000"), SourceWAN: ap("9.9.9.9:1001"), Identifier: 1}) {
		t.Errorf("puncture %+v", p)
	}

	var hello struct{ Text string }
	s, _ = ParseSigned(v.Bytes("hello_message"))
	if err := Unmarshal(s.Payload, &hello); err != nil || hello.Text != "hello from py-ipv8" {
		t.Errorf("hello %+v, %v", hello, err)
	}
	var numbers struct {
		A int64
		B bool
		C []byte
	}
	s, _ = ParseSigned(v.Bytes("numbers_message"))
	if err := Unmarshal(s.Payload, &numbers); err != nil || numbers.A != 7 || !numbers.B || !bytes.Equal(numbers.C, []byte{1, 2}) {
		t.Errorf("numbers %+v, %v", numbers, err)
	}
}

func equalReq(a, b IntroductionRequest) bool {
	return a.Destination == b.Destination && a.SourceLAN == b.SourceLAN && a.SourceWAN == b.SourceWAN &&
		a.ConnType == b.ConnType && a.SupportsNewStyle == b.SupportsNewStyle && a.Advice == b.Advice &&
		a.Identifier == b.Identifier && bytes.Equal(a.Extra, b.Extra)
}

func TestPunctureRequestVectorUnsigned(t *testing.T) {
	v := pyvectors.Must()
	_, cid := vectorKey(t, v)
	m := PunctureRequest{LANWalker: ap("192.168.1.2:18090"), WANWalker: ap("1.2.3.4:18090"), Identifier: 1}
	payload, err := m.Append(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	got := AppendUnsigned(nil, cid, MsgPunctureRequest, v.Uint("global_time"), payload)
	want := v.Bytes("puncture_request")
	if !bytes.Equal(got, want) {
		t.Fatalf("encoded %x\nvector  %x", got, want)
	}
	u, err := ParseUnsigned(want)
	if err != nil {
		t.Fatal(err)
	}
	if u.Community != cid || u.MsgID != MsgPunctureRequest || u.GlobalTime != 1 {
		t.Fatalf("header %+v", u)
	}
	back, err := ParsePunctureRequest(u.Payload, false)
	if err != nil || back != m {
		t.Fatalf("decoded %+v (%v), want %+v", back, err, m)
	}
}

func TestNewStyleIntroductionRequestVector(t *testing.T) {
	v := pyvectors.Must()
	m := IntroductionRequest{
		Destination: ap("[::1]:18091"), SourceLAN: ap("127.0.0.1:18090"), SourceWAN: ap("127.0.0.1:18090"),
		Identifier: 1,
	}
	got, err := m.Append(nil, true)
	if err != nil {
		t.Fatal(err)
	}
	want := v.Bytes("new_introduction_request_payload")
	if !bytes.Equal(got, want) {
		t.Fatalf("encoded %x\nvector  %x", got, want)
	}
	back, err := ParseIntroductionRequest(want, true)
	if err != nil {
		t.Fatal(err)
	}
	// The new form always means new-style support; the flags were clear.
	if back.Destination != m.Destination || back.SourceLAN != m.SourceLAN || back.SourceWAN != m.SourceWAN ||
		back.Identifier != 1 || back.Advice || back.ConnType != ConnUnknown || len(back.Extra) != 0 {
		t.Fatalf("decoded %+v", back)
	}
}
