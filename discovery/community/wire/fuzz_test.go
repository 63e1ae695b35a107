package wire

import (
	"bytes"
	"reflect"
	"testing"
)

// The fuzz targets check that no input panics, that accepted input is
// described consistently, and that re-encoding what was decoded decodes to
// the same value. Seeds (py-ipv8's vectors among them) are checked in under
// testdata/fuzz.

func FuzzParseSigned(f *testing.F) {
	f.Fuzz(func(t *testing.T, pkt []byte) {
		s, err := ParseSigned(pkt)
		if err != nil {
			return
		}
		if len(s.KeyBin) != KeySize || len(s.Signature) != SigSize ||
			len(s.Payload)+MinSigned != len(pkt) || len(s.SignedBytes())+SigSize != len(pkt) {
			t.Fatalf("inconsistent parse of %d bytes: key %d payload %d", len(pkt), len(s.KeyBin), len(s.Payload))
		}
	})
}

func FuzzParseUnsigned(f *testing.F) {
	f.Fuzz(func(t *testing.T, pkt []byte) {
		u, err := ParseUnsigned(pkt)
		if err != nil {
			return
		}
		if len(u.Payload)+MinUnsigned != len(pkt) {
			t.Fatalf("payload %d of %d bytes", len(u.Payload), len(pkt))
		}
		again := AppendUnsigned(nil, u.Community, u.MsgID, u.GlobalTime, u.Payload)
		if !bytes.Equal(again, pkt) {
			t.Fatalf("re-encoded %x, input %x", again, pkt)
		}
	})
}

func FuzzParseIntroductionRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, newStyle bool) {
		m, err := ParseIntroductionRequest(b, newStyle)
		if err != nil {
			return
		}
		enc, err := m.Append(nil, newStyle)
		if err != nil {
			t.Fatalf("decoded request does not encode: %v", err)
		}
		m2, err := ParseIntroductionRequest(enc, newStyle)
		if err != nil || !equalReq(m, m2) {
			t.Fatalf("re-decoded %+v (%v), first %+v", m2, err, m)
		}
	})
}

func FuzzParseIntroductionResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, newStyle bool) {
		m, err := ParseIntroductionResponse(b, newStyle)
		if err != nil {
			return
		}
		enc, err := m.Append(nil, newStyle)
		if err != nil {
			t.Fatalf("decoded response does not encode: %v", err)
		}
		m2, err := ParseIntroductionResponse(enc, newStyle)
		if err != nil || !reflect.DeepEqual(normExtra(m), normExtra(m2)) {
			t.Fatalf("re-decoded %+v (%v), first %+v", m2, err, m)
		}
	})
}

func normExtra(m IntroductionResponse) IntroductionResponse {
	if len(m.Extra) == 0 {
		m.Extra = nil
	}
	return m
}

func FuzzParsePunctureRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, newStyle bool) {
		m, err := ParsePunctureRequest(b, newStyle)
		if err != nil {
			return
		}
		enc, err := m.Append(nil, newStyle)
		if err != nil {
			t.Fatal(err)
		}
		if m2, err := ParsePunctureRequest(enc, newStyle); err != nil || m2.Identifier != m.Identifier ||
			m2.LANWalker.Port() != m.LANWalker.Port() || m2.WANWalker.Addr().Unmap() != m.WANWalker.Addr().Unmap() {
			t.Fatalf("re-decoded %+v (%v), first %+v", m2, err, m)
		}
	})
}

func FuzzParsePuncture(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, newStyle bool) {
		m, err := ParsePuncture(b, newStyle)
		if err != nil {
			return
		}
		enc, err := m.Append(nil, newStyle)
		if err != nil {
			t.Fatal(err)
		}
		if m2, err := ParsePuncture(enc, newStyle); err != nil || m2.Identifier != m.Identifier ||
			m2.SourceWAN.Addr().Unmap() != m.SourceWAN.Addr().Unmap() {
			t.Fatalf("re-decoded %+v (%v), first %+v", m2, err, m)
		}
	})
}

func FuzzSplitAdvert(f *testing.F) {
	f.Fuzz(func(t *testing.T, extra []byte) {
		app, a, ok := SplitAdvert(extra)
		if !ok {
			if !bytes.Equal(app, extra) {
				t.Fatal("no advert, but extra was cut")
			}
			return
		}
		if len(app) >= len(extra) {
			t.Fatal("advert found but nothing cut")
		}
		app2, a2, ok2 := SplitAdvert(AppendAdvert(bytes.Clone(app), a))
		if !ok2 || a2 != a || !bytes.Equal(app2, app) {
			t.Fatalf("re-encoded advert %+v %q, first %+v %q", a2, app2, a, app)
		}
	})
}

func FuzzUnmarshal(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		var v everything
		if err := Unmarshal(b, &v); err != nil {
			return
		}
		enc, err := Marshal(nil, &v)
		if err != nil {
			t.Fatalf("decoded value does not encode: %v", err)
		}
		var v2 everything
		if err := Unmarshal(enc, &v2); err != nil {
			t.Fatalf("re-encoded value does not decode: %v", err)
		}
		enc2, _ := Marshal(nil, &v2)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("unstable encoding %x / %x", enc, enc2)
		}
	})
}
