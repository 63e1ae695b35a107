package peer

import (
	"bytes"
	"errors"
	"testing"
)

// The decoders of keys and IDs that arrive from the network (identify,
// handshake payloads, py-ipv8's signed packets) never panic, refuse with
// their sentinel errors, and accept only what they would encode
// themselves.

func fuzzKey(f *testing.F) *PrivateKey {
	f.Helper()
	k, err := NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	return k
}

func FuzzParseLibNaCLPK(f *testing.F) {
	pk := fuzzKey(f).Public().MarshalLibNaCLPK()
	f.Add(pk)
	f.Add(pk[:len(pk)-1])
	bad := bytes.Clone(pk)
	bad[len(bad)-1] ^= 0xff
	f.Add(bad)
	f.Add([]byte("LibNaCLPK:"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseLibNaCLPK(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("error %v is not ErrInvalidKey", err)
			}
			return
		}
		if got := p.MarshalLibNaCLPK(); !bytes.Equal(got, b) {
			t.Fatalf("accepted %x, re-encodes as %x", b, got)
		}
	})
}

func FuzzUnmarshalLibp2pPublicKey(f *testing.F) {
	enc := MarshalLibp2pPublicKey(fuzzKey(f).Public().Ed25519())
	f.Add(enc)
	f.Add(enc[:4])
	f.Add(append(bytes.Clone(enc), 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		pub, err := UnmarshalLibp2pPublicKey(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("error %v is not ErrInvalidKey", err)
			}
			return
		}
		if got := MarshalLibp2pPublicKey(pub); !bytes.Equal(got, b) {
			t.Fatalf("accepted %x, re-encodes as %x", b, got)
		}
	})
}

func FuzzIDFromBytes(f *testing.F) {
	id := IDFromPublicKey(fuzzKey(f).Public())
	f.Add([]byte(id))
	f.Add([]byte(id)[:10])
	f.Add([]byte{0x00, 0x24})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := IDFromBytes(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidID) {
				t.Fatalf("error %v is not ErrInvalidID", err)
			}
			return
		}
		if !bytes.Equal([]byte(got), b) {
			t.Fatalf("accepted %x as %x", b, []byte(got))
		}
		back, err := Decode(got.String())
		if err != nil || back != got {
			t.Fatalf("text form %q does not decode back: %v", got.String(), err)
		}
		if _, err := got.Ed25519(); err != nil {
			t.Fatalf("accepted ID has no Ed25519 key: %v", err)
		}
	})
}
