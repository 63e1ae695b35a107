package noise

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/transport"
)

// Every decoder of bytes from the network has a fuzz target here; the
// seeds in testdata/fuzz are real packets of a handshake and a session
// (regenerate them with NOISE_WRITE_SEEDS=1 go test -run TestWriteFuzzSeeds).

func FuzzParseInitiation(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseInitiation(b)
		if err != nil {
			return
		}
		if out := m.Append(nil); !bytes.Equal(out, b) {
			t.Fatalf("round trip: %x != %x", out, b)
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseResponse(b)
		if err != nil {
			return
		}
		if out := m.Append(nil); !bytes.Equal(out, b) {
			t.Fatalf("round trip: %x != %x", out, b)
		}
	})
}

func FuzzParseCookieReply(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseCookieReply(b)
		if err != nil {
			return
		}
		if out := m.Append(nil); !bytes.Equal(out, b) {
			t.Fatalf("round trip: %x != %x", out, b)
		}
	})
}

func FuzzParseRefusal(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseRefusal(b)
		if err != nil {
			return
		}
		if out := m.Append(nil); !bytes.Equal(out, b) {
			t.Fatalf("round trip: %x != %x", out, b)
		}
	})
}

func FuzzParseDataHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := ParseDataHeader(b)
		if err != nil {
			return
		}
		if n != DataHeaderLen || len(b) < DataHeaderLen+tagLen {
			t.Fatalf("consumed %d of %d", n, len(b))
		}
		if out := h.Append(nil); !bytes.Equal(out, b[:n]) {
			t.Fatalf("round trip: %x != %x", out, b[:n])
		}
	})
}

func FuzzParseHello(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHello(b)
		if err != nil {
			return
		}
		if h.Len() != len(b) {
			t.Fatalf("Len %d for %d bytes", h.Len(), len(b))
		}
		if out := h.Append(nil); !bytes.Equal(out, b) {
			t.Fatalf("round trip: %x != %x", out, b)
		}
	})
}

// FuzzParsePacket feeds arbitrary packets to a live responder with a
// session, through every handler: nothing may panic, block, or leave state
// behind that does not expire.
func FuzzParsePacket(f *testing.F) {
	n := newFakeNet(f)
	clk := newFakeClock()
	a := newNode(f, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(f, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	_, sb := pair(f, a, b, true)
	sb.SetReceiver(func([]byte) {})
	n.settle()
	from := netip.MustParseAddrPort("10.9.9.9:9")
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) == 0 {
			return
		}
		switch pkt[0] {
		case transport.TypeNoiseInitiation, transport.TypeNoiseResponse, transport.TypeNoiseCookie, transport.TypeNoiseData:
			// Through the handlers the transport registered on the port
			// (resumptions and 0-RTT packets included).
			b.port.deliver(pkt, from)
		default:
			b.tr.HandleVia(pkt, &directPath{port: b.port, addr: from})
		}
		b.tr.mu.Lock()
		inb := len(b.tr.inbound)
		b.tr.mu.Unlock()
		if inb > b.tr.cfg.MaxHalfOpen {
			t.Fatalf("%d half-open handshakes", inb)
		}
	})
	clk.Advance(time.Minute)
}

// TestFuzzSeedsAreRealPackets checks that every checked-in corpus starts
// from at least one well-formed packet of its kind, and regenerates the
// corpora from a real handshake and session when NOISE_WRITE_SEEDS is set.
func TestFuzzSeedsAreRealPackets(t *testing.T) {
	parsers := map[string]func([]byte) error{
		"FuzzParseInitiation":  func(b []byte) error { _, err := ParseInitiation(b); return err },
		"FuzzParseResponse":    func(b []byte) error { _, err := ParseResponse(b); return err },
		"FuzzParseCookieReply": func(b []byte) error { _, err := ParseCookieReply(b); return err },
		"FuzzParseRefusal":     func(b []byte) error { _, err := ParseRefusal(b); return err },
		"FuzzParseDataHeader":  func(b []byte) error { _, _, err := ParseDataHeader(b); return err },
		"FuzzParseHello":       func(b []byte) error { _, err := ParseHello(b); return err },
		"FuzzParsePacket":      func(b []byte) error { _, _, err := ParseDataHeader(b); return err },
	}
	if os.Getenv("NOISE_WRITE_SEEDS") != "" {
		writeFuzzSeeds(t)
	}
	for dir, parse := range parsers {
		files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", dir, "*"))
		valid := 0
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			lines := bytes.SplitN(raw, []byte("\n"), 3)
			if len(lines) < 2 || string(lines[0]) != "go test fuzz v1" {
				t.Fatalf("%s: not a corpus file", f)
			}
			lit := bytes.TrimSuffix(bytes.TrimPrefix(lines[1], []byte("[]byte(")), []byte(")"))
			b, err := strconv.Unquote(string(lit))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if parse([]byte(b)) == nil {
				valid++
			}
		}
		if valid == 0 {
			t.Errorf("%s: no well-formed seed among %d", dir, len(files))
		}
	}
}

func writeFuzzSeeds(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	var all [][]byte
	n.tap = func(p fakePacket) { all = append(all, append([]byte(nil), p.data...)) }
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(t, n, "10.0.0.2:2000", newPyKey(t), Config{Clock: clk, CookieThreshold: -1})
	sa, sb := pair(t, a, b, true)
	sa.Send([]byte("data"))
	sb.Send(nil)
	c := newNode(t, n, "10.0.0.3:3000", nil, Config{Clock: clk})
	pair(t, c, a, false)
	c.tr.Dial(ctxT(t, 5*time.Second), a.port.LocalAddr(), newKey(t).ID(), nil) // refused, then XX
	sa.Close()
	n.settle()
	write := func(dir string, seeds [][]byte) {
		d := filepath.Join("testdata", "fuzz", dir)
		os.MkdirAll(d, 0o755)
		for i, s := range seeds {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
			os.WriteFile(filepath.Join(d, "seed"+strconv.Itoa(i)), []byte(body), 0o644)
		}
	}
	byType := map[byte][][]byte{}
	for _, p := range all {
		byType[p[0]] = append(byType[p[0]], p)
	}
	var refusals, cookies [][]byte
	for _, p := range byType[transport.TypeNoiseCookie] {
		if p[1] == replyRefusal {
			refusals = append(refusals, p)
		} else {
			cookies = append(cookies, p)
		}
	}
	var hellos [][]byte
	for _, h := range []Hello{
		{Timestamp: 1},
		{Timestamp: 2, Ed25519: a.tr.edPub, Early: []byte("GET /")},
		{Rekey: true, Timestamp: 3, Ed25519: a.tr.edPub},
		{Timestamp: 4, Ed25519: b.tr.edPub, X25519: b.tr.primary.kp.public[:], Signature: b.tr.sig},
	} {
		hellos = append(hellos, h.Append(nil))
	}
	short := [][]byte{{}, {0x04}, {0x05, 0x02}, {0x06, 0x01, 0, 0}, {0x07, 0, 0, 0, 1, 2, 3, 4}}
	write("FuzzParseInitiation", append(byType[transport.TypeNoiseInitiation], short...))
	write("FuzzParseResponse", append(byType[transport.TypeNoiseResponse], short...))
	write("FuzzParseCookieReply", append(cookies, short...))
	write("FuzzParseRefusal", append(refusals, short...))
	write("FuzzParseDataHeader", append(byType[transport.TypeNoiseData], short...))
	write("FuzzParseHello", append(hellos, short...))
	write("FuzzParsePacket", append(all, short...))
}
