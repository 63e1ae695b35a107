package stun

import (
	"net/netip"
	"testing"
)

func FuzzParseChangeRequest(f *testing.F) {
	f.Add([]byte{0, 0, 0, 6})
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		c, err := ParseChangeRequest(v)
		if err != nil {
			return
		}
		if got, _ := ParseChangeRequest(AppendChangeRequest(nil, c)); got != c {
			t.Fatalf("re-encode %v -> %v", c, got)
		}
	})
}

func FuzzParseResponsePort(f *testing.F) {
	f.Add([]byte{0x9c, 0x40, 0, 0})
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		p, err := ParseResponsePort(v)
		if err != nil {
			return
		}
		if p == 0 {
			t.Fatal("port 0 accepted")
		}
		if got, _ := ParseResponsePort(AppendResponsePort(nil, p)); got != p {
			t.Fatalf("re-encode %d -> %d", p, got)
		}
	})
}

func FuzzParseRequest(f *testing.F) {
	f.Add(Request{TxID: NewTxID()}.Append(nil))
	f.Add(Request{TxID: NewTxID(), Change: ChangeIP | ChangePort, ResponsePort: 9}.Append(nil))
	p, a := netip.MustParseAddrPort("203.0.113.1:3478"), netip.MustParseAddrPort("203.0.113.2:3479")
	from := netip.MustParseAddrPort("198.51.100.9:5000")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		// Whatever the server makes of it must be a response it can parse.
		rep, ok := answer(b, from, serverAddrs{local: p, primary: p, alt: a}, Software)
		if ok != (err == nil) {
			t.Fatalf("answer ok=%v but parse err=%v", ok, err)
		}
		if !ok {
			return
		}
		resp, err := ParseResponse(rep.pkt)
		if err != nil {
			t.Fatalf("server answer does not parse: %v", err)
		}
		if resp.TxID != r.TxID {
			t.Fatal("answer for another transaction")
		}
		if len(rep.pkt) > maxMessage {
			t.Fatalf("answer of %d bytes", len(rep.pkt))
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	txid := NewTxID()
	f.Add(appendSuccess(nil, response{txid: txid, mapped: netip.MustParseAddrPort("198.51.100.7:4000"),
		origin: netip.MustParseAddrPort("203.0.113.1:3478"), other: netip.MustParseAddrPort("203.0.113.2:3479")}, Software))
	f.Add(appendError(nil, txid, 420, "Unknown Attribute", []uint16{3}, ""))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResponse(b)
		if err != nil {
			return
		}
		if r.Error == 0 && !r.Mapped.IsValid() {
			t.Fatal("success without mapped address accepted")
		}
		if r.Error != 0 && (r.Error < 300 || r.Error > 699) {
			t.Fatalf("error code %d", r.Error)
		}
	})
}
