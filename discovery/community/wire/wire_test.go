package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

func TestReaderStopsAtFirstErrorAndReturnsZeros(t *testing.T) {
	r := NewReader([]byte{0x00, 0x05, 'a'}) // varlenH claims 5 bytes, has 1
	if p := r.VarLenH(); p != nil {
		t.Fatalf("short varlenH returned %q", p)
	}
	if !errors.Is(r.Err(), ErrShort) || !errors.Is(r.Err(), ErrMalformed) {
		t.Fatalf("err %v, want ErrShort wrapping ErrMalformed", r.Err())
	}
	if v := r.Uint64(); v != 0 {
		t.Fatalf("read after error returned %d", v)
	}
}

func TestReaderDoneRefusesTrailingBytes(t *testing.T) {
	r := NewReader([]byte{0, 1, 2})
	r.Uint16()
	if err := r.Done(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Done with a byte left: %v", err)
	}
}

func TestIPAddressRoundTripsBothFamiliesAndRefusesUnknownType(t *testing.T) {
	for _, a := range []netip.AddrPort{ap("1.2.3.4:5"), ap("[2001:db8::1]:443"), {}} {
		w := NewWriter(nil)
		w.IPAddress(a)
		b, err := w.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		r := NewReader(b)
		got := r.IPAddress()
		if err := r.Done(); err != nil {
			t.Fatal(err)
		}
		want := a
		if !a.IsValid() {
			want = ap("0.0.0.0:0")
		}
		if got != want {
			t.Errorf("%v came back as %v", a, got)
		}
	}
	r := NewReader([]byte{0x02, 0, 3, 'a', 'b', 'c', 0, 80})
	r.IPAddress()
	if !errors.Is(r.Err(), ErrMalformed) {
		t.Fatalf("domain-name address type accepted: %v", r.Err())
	}
}

func TestIPv4FieldRefusesIPv6AndUnmapsMapped(t *testing.T) {
	w := NewWriter(nil)
	w.IPv4(ap("[2001:db8::1]:1"))
	if _, err := w.Bytes(); !errors.Is(err, ErrNotIPv4) {
		t.Fatalf("IPv6 in ipv4 field: %v", err)
	}
	w = NewWriter(nil)
	w.IPv4(ap("[::ffff:10.1.2.3]:7"))
	b, err := w.Bytes()
	if err != nil || !bytes.Equal(b, []byte{10, 1, 2, 3, 0, 7}) {
		t.Fatalf("mapped address encoded as %x (%v)", b, err)
	}
}

func TestOldStyleRequestRefusesIPv6Destination(t *testing.T) {
	m := IntroductionRequest{Destination: ap("[2001:db8::1]:1")}
	if _, err := m.Append(nil, false); !errors.Is(err, ErrNotIPv4) {
		t.Fatalf("err %v", err)
	}
	if _, err := m.Append(nil, true); err != nil {
		t.Fatalf("new style must carry IPv6: %v", err)
	}
}

func TestVarLenHUTF8RefusesInvalidText(t *testing.T) {
	r := NewReader([]byte{0, 2, 0xff, 0xfe})
	if s := r.VarLenHUTF8(); s != "" || !errors.Is(r.Err(), ErrMalformed) {
		t.Fatalf("got %q, %v", s, r.Err())
	}
	w := NewWriter(nil)
	w.VarLenHUTF8("\xff")
	if w.Err() == nil {
		t.Fatal("encoded invalid UTF-8")
	}
	w = NewWriter(nil)
	w.VarLenH(make([]byte, 70000))
	if !errors.Is(w.Err(), ErrTooLong) {
		t.Fatalf("70000-byte varlenH: %v", w.Err())
	}
}

func TestResponseFlagsRoundTripInBothForms(t *testing.T) {
	in := IntroductionResponse{
		Destination: ap("1.1.1.1:1"), WANIntroduction: ap("2.2.2.2:2"), ConnType: ConnSymmetricNAT,
		SupportsNewStyle: true, IntroSupportsNewStyle: true, PeerLimitReached: true, Identifier: 0xBEEF,
		Extra: []byte("x"),
	}
	b, err := in.Append(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	// Flag byte: 11 (symmetric NAT), 0, supports 0x10, intro 0x08, limit 0x04.
	if flags := b[30]; flags != 0xC0|0x10|0x08|0x04 {
		t.Fatalf("flags %08b", flags)
	}
	out, err := ParseIntroductionResponse(b, false)
	if err != nil {
		t.Fatal(err)
	}
	if out.ConnType != ConnSymmetricNAT || !out.SupportsNewStyle || !out.IntroSupportsNewStyle ||
		!out.PeerLimitReached || out.Identifier != 0xBEEF || string(out.Extra) != "x" {
		t.Fatalf("old form decoded %+v", out)
	}
	b, err = in.Append(nil, true)
	if err != nil {
		t.Fatal(err)
	}
	out, err = ParseIntroductionResponse(b, true)
	if err != nil {
		t.Fatal(err)
	}
	if !out.IntroSupportsNewStyle || out.WANIntroduction != in.WANIntroduction || out.Identifier != 0xBEEF {
		t.Fatalf("new form decoded %+v", out)
	}
}

func TestParseSignedRefusesForeignKeysAndShortPackets(t *testing.T) {
	var cid CommunityID
	pkt := AppendHeader(nil, cid, 1)
	pkt = append(pkt, 0, 10) // a 10-byte key: not LibNaCLPK
	pkt = append(pkt, make([]byte, 10+8+64)...)
	if _, err := ParseSigned(pkt); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("10-byte key: %v", err)
	}
	if _, err := ParseSigned(pkt[:30]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short: %v", err)
	}
	if _, _, err := PeekHeader([]byte{0x00, 0x01, 1, 2}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("wrong version: %v", err)
	}
}

func TestAdvertTrailerFollowsApplicationExtra(t *testing.T) {
	for _, app := range [][]byte{nil, []byte("app-data")} {
		extra := AppendAdvert(bytes.Clone(app), Advert{Flags: CapNoise})
		gotApp, a, ok := SplitAdvert(extra)
		if !ok || !a.Noise() || !bytes.Equal(gotApp, app) {
			t.Fatalf("app %q: split %q %+v %t", app, gotApp, a, ok)
		}
	}
	// py-ipv8 sends empty extra bytes, or its own: no advert found.
	for _, extra := range [][]byte{nil, {}, []byte("g8"), {0x01, 0x09, 0x01, 'g', '8'}} {
		if app, _, ok := SplitAdvert(extra); ok || !bytes.Equal(app, extra) {
			t.Fatalf("%x read as an advert", extra)
		}
	}
}

type nested struct {
	N uint16
	S string
}

type everything struct {
	A  bool
	B  uint8
	C  uint16
	D  uint32
	E  uint64
	F  int8
	G  int16
	H  int32
	I  int64
	J  float64
	K  string
	L  []byte `ipv8:"varlenI"`
	M  [3]byte
	N  netip.AddrPort
	O  netip.AddrPort `ipv8:"ipv4"`
	P  nested
	Q  []nested
	R  []int64
	S  []string
	x  int    // unexported: skipped
	T  int    `ipv8:"-"`
	Zz []byte `ipv8:"raw"`
}

func TestMarshalRoundTripsEveryFieldKind(t *testing.T) {
	in := everything{
		A: true, B: 1, C: 2, D: 3, E: 4, F: -5, G: -6, H: -7, I: -8, J: 1.5, K: "κ", L: []byte{9},
		M: [3]byte{1, 2, 3}, N: ap("[2001:db8::2]:9"), O: ap("4.3.2.1:8"), P: nested{7, "p"},
		Q: []nested{{1, "a"}, {2, "b"}}, R: []int64{-1, 1}, S: []string{"x", ""}, Zz: []byte("rest"),
	}
	b, err := Marshal(nil, &in)
	if err != nil {
		t.Fatal(err)
	}
	var out everything
	if err := Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	b2, _ := Marshal(nil, out)
	if !bytes.Equal(b, b2) || out.K != "κ" || out.Q[1].S != "b" || out.N != in.N || string(out.Zz) != "rest" {
		t.Fatalf("round trip changed the value: %+v", out)
	}
	// Decoded slices are copies.
	b[len(b)-1] = 'X'
	if string(out.Zz) != "rest" {
		t.Fatal("Unmarshal aliased the input")
	}
}

func TestUnmarshalRefusesArrayCountBeyondPacket(t *testing.T) {
	var v struct{ R []uint64 }
	// Claims 65535 elements of 8 bytes in 2 bytes of data.
	err := Unmarshal([]byte{0xff, 0xff, 0, 0}, &v)
	if !errors.Is(err, ErrMalformed) || v.R != nil {
		t.Fatalf("err %v, slice of %d", err, len(v.R))
	}
}

func TestMarshalRefusesUnsupportedTypes(t *testing.T) {
	for _, v := range []any{
		struct{ M map[string]int }{},
		struct{ P *int }{},
		struct {
			Raw []byte `ipv8:"raw"`
			N   int
		}{},
		struct {
			A netip.AddrPort `ipv8:"H"`
		}{},
		42,
	} {
		if _, err := Marshal(nil, v); !errors.Is(err, ErrUnsupportedType) {
			t.Errorf("%T: %v", v, err)
		}
	}
}
