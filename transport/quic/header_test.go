package quic

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ipv8/go-ipv8/protocol"
)

func TestStreamHeaderRoundTrip(t *testing.T) {
	for _, p := range []protocol.ID{"/a", "/ipv8/ping/1", protocol.ID(strings.Repeat("x", 127)), protocol.ID(strings.Repeat("y", 128)), protocol.ID(strings.Repeat("z", protocol.MaxIDLen))} {
		b := appendStreamHeader([]byte("prefix"), p)
		h := b[len("prefix"):]
		if len(h) != streamHeaderLen(p) {
			t.Errorf("%d-byte ID: header is %d bytes, streamHeaderLen says %d", len(p), len(h), streamHeaderLen(p))
		}
		got, n, err := parseStreamHeader(append(h, "data after"...))
		if err != nil || got != p || n != len(h) {
			t.Errorf("%d-byte ID: parsed %d-byte %q, %d bytes, %v", len(p), len(got), got, n, err)
		}
		rp, err := readStreamHeader(bytes.NewReader(append(h, "data after"...)))
		if err != nil || rp != p {
			t.Errorf("%d-byte ID: read %v", len(p), err)
		}
	}
	if h := appendStreamHeader(nil, "/ipv8/ping/1"); !bytes.Equal(h, append([]byte{12}, "/ipv8/ping/1"...)) {
		t.Errorf("header %x", h)
	}
}

func TestStreamHeaderParserRefusesMalformed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    []byte
		short bool
	}{
		{"empty input", nil, true},
		{"empty ID", []byte{0x00}, false},
		{"ID cut short", []byte{0x05, '/', 'a'}, true},
		{"length cut short", []byte{0x80}, true},
		{"non-minimal length", []byte{0x85, 0x00, '/', 'a', 'b', 'c', 'd'}, false},
		{"ID of 256 bytes", append([]byte{0x80, 0x02}, bytes.Repeat([]byte{'x'}, 256)...), false},
		{"three-byte length", []byte{0x80, 0x80, 0x01}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parseStreamHeader(tc.in)
			if !errors.Is(err, ErrInvalidStreamHeader) {
				t.Fatalf("accepted: %v", err)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) != tc.short {
				t.Errorf("%v: cut short = %v, want %v", err, !tc.short, tc.short)
			}
			if _, err := readStreamHeader(bytes.NewReader(tc.in)); err == nil {
				t.Error("readStreamHeader accepted it")
			}
		})
	}
}

func TestReadStreamHeaderReadsNothingBeyondHeader(t *testing.T) {
	r := bytes.NewReader(append(appendStreamHeader(nil, "/p/1"), "payload"...))
	if _, err := readStreamHeader(r); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "payload" {
		t.Errorf("left %q for the application", rest)
	}
}

func TestLibp2pMultistreamOpeningParsesAsProtocol(t *testing.T) {
	// What a go-libp2p peer writes first on a stream.
	opening := append([]byte{0x13}, "/multistream/1.0.0\n"...)
	p, n, err := parseStreamHeader(append(opening, 0x0b))
	if err != nil || p != "/multistream/1.0.0\n" || n != len(opening) {
		t.Errorf("parsed %q, %d bytes, %v", p, n, err)
	}
}
