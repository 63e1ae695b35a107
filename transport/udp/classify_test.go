package udp

import (
	"encoding/binary"
	"testing"
)

func stunHeader(msgType uint16, bodyLen uint16) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b[0:2], msgType)
	binary.BigEndian.PutUint16(b[2:4], bodyLen)
	binary.BigEndian.PutUint32(b[4:8], stunMagicCookie)
	copy(b[8:], "txid-0123456")
	return b
}

func TestClassifyByFirstBytes(t *testing.T) {
	community := append([]byte{0x00, 0x02}, make([]byte, 21)...)
	shortSTUN := stunHeader(0x0001, 0)[:19]
	// A community packet whose bytes 4–7 happen to hold the cookie is STUN:
	// the cookie is the stronger evidence (docs/protocol/port.md).
	communityWithCookie := stunHeader(0x0002, 0)

	tests := []struct {
		name string
		b    []byte
		want Class
	}{
		{"empty", nil, ClassInvalid},
		{"stun binding request", stunHeader(0x0001, 0), ClassSTUN},
		{"stun binding success", stunHeader(0x0101, 0), ClassSTUN},
		{"stun class bits 0x03", stunHeader(0x0311, 8), ClassSTUN},
		{"stun header one byte short", shortSTUN, ClassInvalid},
		{"community", community, ClassCommunity},
		{"community two bytes", []byte{0x00, 0x02}, ClassCommunity},
		{"cookie wins over community prefix", communityWithCookie, ClassSTUN},
		{"0x00 0x01 without cookie", []byte{0x00, 0x01, 0, 0, 0, 0}, ClassInvalid},
		{"0x00 alone", []byte{0x00}, ClassInvalid},
		{"0x03 without cookie", []byte{0x03, 0x02, 0, 0}, ClassInvalid},
		{"own lowest type", []byte{0x04}, ClassOwn},
		{"own noise data", []byte{0x07, 1, 2, 3}, ClassOwn},
		{"own highest type", []byte{0x3F}, ClassOwn},
		{"quic short header lowest", []byte{0x40}, ClassQUIC},
		{"quic long header", []byte{0xC3, 0, 0, 0, 1}, ClassQUIC},
		{"quic 0xFF", []byte{0xFF}, ClassQUIC},
		{"long header without fixed bit (version negotiation)", []byte{0x80, 0, 0, 0, 0}, ClassQUIC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.b); got != tt.want {
				t.Errorf("Classify(% x) = %v, want %v", tt.b, got, tt.want)
			}
		})
	}
}

func TestClassString(t *testing.T) {
	if got := ClassSTUN.String(); got != "stun" {
		t.Errorf("ClassSTUN.String() = %q", got)
	}
	if got := Class(200).String(); got != "class(200)" {
		t.Errorf("Class(200).String() = %q", got)
	}
}

// FuzzClassify checks Classify against the first-byte table written out a
// second way, on arbitrary input: it must never panic and every packet gets
// exactly the class the table gives it.
func FuzzClassify(f *testing.F) {
	f.Add([]byte{})
	f.Add(stunHeader(0x0001, 0))
	f.Add([]byte{0x00, 0x02, 1, 2, 3})
	f.Add([]byte{0x07, 0, 0, 0, 0})
	f.Add([]byte{0xC0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		got := Classify(b)
		var want Class
		switch {
		case len(b) == 0:
			want = ClassInvalid
		case b[0]&0x40 != 0 || b[0]&0x80 != 0:
			want = ClassQUIC
		case b[0] >= 0x04:
			want = ClassOwn
		case len(b) >= 20 && b[4] == 0x21 && b[5] == 0x12 && b[6] == 0xA4 && b[7] == 0x42:
			want = ClassSTUN
		case len(b) >= 2 && b[0] == 0 && b[1] == 2:
			want = ClassCommunity
		default:
			want = ClassInvalid
		}
		if got != want {
			t.Fatalf("Classify(% x) = %v, want %v", b, got, want)
		}
	})
}
