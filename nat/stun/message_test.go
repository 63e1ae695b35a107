package stun

import (
	"errors"
	"net/netip"
	"testing"
)

func TestRequestRoundTrip(t *testing.T) {
	for _, r := range []Request{
		{TxID: NewTxID()},
		{TxID: NewTxID(), Change: ChangeIP | ChangePort},
		{TxID: NewTxID(), Change: ChangePort, ResponsePort: 40000},
	} {
		got, err := ParseRequest(r.Append(nil))
		if err != nil {
			t.Fatal(err)
		}
		if got.TxID != r.TxID || got.Change != r.Change || got.ResponsePort != r.ResponsePort || len(got.Unknown) != 0 {
			t.Errorf("round trip %+v -> %+v", r, got)
		}
	}
}

func TestSuccessResponseRoundTrip(t *testing.T) {
	for _, mapped := range []string{"198.51.100.7:40000", "[2001:db8::7]:40000"} {
		txid := NewTxID()
		r := response{txid: txid, mapped: netip.MustParseAddrPort(mapped),
			origin: netip.MustParseAddrPort("203.0.113.1:3478"), other: netip.MustParseAddrPort("203.0.113.2:3479")}
		got, err := ParseResponse(appendSuccess(nil, r, Software))
		if err != nil {
			t.Fatal(err)
		}
		if got.TxID != txid || got.Mapped != r.mapped || got.Origin != r.origin || got.Other != r.other || got.Error != 0 || got.Software != Software {
			t.Errorf("round trip %+v -> %+v", r, got)
		}
	}
}

func TestErrorResponseRoundTrip(t *testing.T) {
	txid := NewTxID()
	got, err := ParseResponse(appendError(nil, txid, 420, "Unknown Attribute", []uint16{3, 0x27}, ""))
	if err != nil {
		t.Fatal(err)
	}
	if got.Error != 420 || got.Reason != "Unknown Attribute" || len(got.Unknown) != 2 || got.Unknown[1] != 0x27 {
		t.Errorf("%+v", got)
	}
}

func TestParseRejectsBrokenMessages(t *testing.T) {
	good := Request{TxID: NewTxID(), Change: ChangeIP}.Append(nil)
	flip := func(i int, v byte) []byte { b := append([]byte(nil), good...); b[i] = v; return b }
	cases := map[string][]byte{
		"short":            good[:19],
		"truncated":        good[:len(good)-4],
		"bad cookie":       flip(4, 0),
		"top bits":         flip(0, 0x40),
		"bad fingerprint":  flip(len(good)-1, good[len(good)-1]^1),
		"change of 3 byte": append(append([]byte{0, 1, 0, 7}, good[4:20]...), 0, 3, 0, 3, 0, 0, 0, 0),
	}
	for name, b := range cases {
		if _, err := ParseRequest(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
	// A Binding request is not a response, and the reverse.
	if _, err := ParseResponse(good); !errors.Is(err, ErrNotBinding) {
		t.Errorf("request parsed as response: %v", err)
	}
}

func TestParseRequestListsUnknownRequiredAttributes(t *testing.T) {
	// header + USERNAME (0x0006, required, unknown here) + SOFTWARE-like optional 0x8099
	b := []byte{0, 1, 0, 16, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
		0, 6, 0, 4, 'u', 's', 'e', 'r', 0x80, 0x99, 0, 4, 1, 2, 3, 4}
	r, err := ParseRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Unknown) != 1 || r.Unknown[0] != 6 {
		t.Fatalf("unknown %v, want [6]", r.Unknown)
	}
	rep, ok := answer(b, netip.MustParseAddrPort("198.51.100.1:1"), serverAddrs{local: netip.MustParseAddrPort("203.0.113.1:3478")}, "")
	if !ok {
		t.Fatal("no answer")
	}
	resp, err := ParseResponse(rep.pkt)
	if err != nil || resp.Error != 420 || resp.Unknown[0] != 6 {
		t.Fatalf("answer %+v, %v; want 420 listing 6", resp, err)
	}
}

func TestAnswerPicksTheSocketAndOtherAddress(t *testing.T) {
	p, a := netip.MustParseAddrPort("203.0.113.1:3478"), netip.MustParseAddrPort("203.0.113.2:3479")
	from := netip.MustParseAddrPort("198.51.100.9:5000")
	cases := []struct {
		change      Change
		origin, oth string
	}{
		{0, "203.0.113.1:3478", "203.0.113.2:3479"},
		{ChangePort, "203.0.113.1:3479", "203.0.113.2:3478"},
		{ChangeIP, "203.0.113.2:3478", "203.0.113.2:3479"},
		{ChangeIP | ChangePort, "203.0.113.2:3479", "203.0.113.2:3478"},
	}
	for _, c := range cases {
		req := Request{TxID: NewTxID(), Change: c.change}
		r, ok := answer(req.Append(nil), from, serverAddrs{local: p, primary: p, alt: a}, "")
		if !ok {
			t.Fatal("dropped")
		}
		if got := (serverAddrs{local: p, primary: p, alt: a}).socket(r.changeIP, r.changePort); got.String() != c.origin {
			t.Errorf("change %s: sent from %s, want %s", c.change, got, c.origin)
		}
		resp, err := ParseResponse(r.pkt)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Origin.String() != c.origin || resp.Other.String() != c.oth || resp.Mapped != from || r.to != from {
			t.Errorf("change %s: origin %s other %s mapped %s to %s", c.change, resp.Origin, resp.Other, resp.Mapped, r.to)
		}
	}
}

func TestServerConfigRejectsBadAlternate(t *testing.T) {
	p := netip.MustParseAddrPort("203.0.113.1:3478")
	for _, a := range []string{"203.0.113.1:3479", "203.0.113.2:3478", "[2001:db8::1]:3479"} {
		if _, err := (ServerConfig{Primary: p, Alternate: netip.MustParseAddrPort(a)}).sockets(); err == nil {
			t.Errorf("alternate %s accepted", a)
		}
	}
}
