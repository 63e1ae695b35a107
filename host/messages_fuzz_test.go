package host

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ipv8/go-ipv8/protocol"
)

// FuzzParseMessage feeds arbitrary datagram messages to the decoder: it
// never panics, refuses what it cannot split with ErrBadMessage, and what
// it accepts is a valid protocol ID whose re-encoding parses back to the
// same protocol and payload.
func FuzzParseMessage(f *testing.F) {
	f.Add(AppendMessage(nil, "/ipv8/ping/1", []byte("hi")))
	f.Add(AppendMessage(nil, "/x", nil))
	f.Add([]byte{0x00, 0x01})
	f.Add([]byte{0x80, 0x00, 'a'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		proto, payload, err := ParseMessage(b)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v is not ErrBadMessage", err)
			}
			return
		}
		if err := proto.Validate(); err != nil {
			t.Fatalf("accepted an invalid protocol ID %q: %v", proto, err)
		}
		if len(proto) > protocol.MaxIDLen || len(proto)+len(payload) > len(b) {
			t.Fatalf("proto %d + payload %d bytes out of a %d-byte message", len(proto), len(payload), len(b))
		}
		p2, pl2, err := ParseMessage(AppendMessage(nil, proto, payload))
		if err != nil || p2 != proto || !bytes.Equal(pl2, payload) {
			t.Fatalf("re-encoding does not parse back: %q %x %v", p2, pl2, err)
		}
	})
}
