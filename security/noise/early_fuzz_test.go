package noise

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

func FuzzParseEarlyHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := ParseEarlyHeader(b)
		if err != nil {
			return
		}
		if n != DataHeaderLen || len(b) < DataHeaderLen+tagLen || h.Kind != KindEarly {
			t.Fatalf("consumed %d of %d, kind %d", n, len(b), h.Kind)
		}
		if out := h.Append(nil); !bytes.Equal(out, b[:n]) {
			t.Fatalf("round trip: %x != %x", out, b[:n])
		}
	})
}

// FuzzEarlyPacket feeds arbitrary 0-RTT packets to a responder that holds
// the 0-RTT state of a live handshake (the initiator's index is in the
// seeds): nothing may panic or be delivered, and the state stays one entry.
func FuzzEarlyPacket(f *testing.F) {
	n := newFakeNet(f)
	clk := newFakeClock()
	a := newNode(f, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(f, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	holdResponses(n)
	sa, err := a.tr.DialEarly(ctxT(f, 10*time.Second), b.port.LocalAddr(), b.id(), nil)
	if err != nil {
		f.Fatal(err)
	}
	sb := accept(f, b)
	delivered := 0
	sb.SetReceiver(func([]byte) { delivered++ })
	n.settle()
	a.tr.mu.Lock()
	idx := a.tr.dials[b.id()].localIndex
	a.tr.mu.Unlock()
	h := DataHeader{Kind: KindEarly, ReceiverIndex: idx}
	f.Add(append(h.Append(nil), make([]byte, 40)...))
	h.Counter = 7
	f.Add(append(h.Append(nil), make([]byte, 16)...))
	from := a.port.LocalAddr()
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) < 2 {
			return
		}
		pkt = append([]byte(nil), pkt...)
		pkt[0], pkt[1] = 0x07, byte(KindEarly)
		b.tr.handleDataOrEarly(pkt, from)
		b.tr.handleDataOrEarly(pkt, netip.MustParseAddrPort("10.9.9.9:9"))
		if delivered != 0 {
			t.Fatalf("a forged 0-RTT packet was delivered")
		}
		if k := b.tr.early.len(); k != 1 {
			t.Fatalf("%d 0-RTT entries", k)
		}
	})
	_ = sa
}

func FuzzParseResumeInitiation(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseResumeInitiation(b)
		if err != nil {
			return
		}
		if len(m.Message) < minResumeMessage1 {
			t.Fatalf("message of %d bytes accepted", len(m.Message))
		}
		if out := m.Append(nil); !bytes.Equal(out, b) {
			t.Fatalf("round trip: %x != %x", out, b)
		}
	})
}
