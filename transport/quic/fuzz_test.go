package quic

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func FuzzParseStreamHeader(f *testing.F) {
	f.Add([]byte("\x0c/ipv8/ping/1"))
	f.Add([]byte("\x0c/ipv8/ping/1payload"))
	f.Add([]byte{0x00})
	f.Add([]byte{0x80, 0x02})
	f.Add([]byte{0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, n, err := parseStreamHeader(b)
		rp, rerr := readStreamHeader(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrInvalidStreamHeader) {
				t.Fatalf("error %v is not ErrInvalidStreamHeader", err)
			}
			if rerr == nil {
				t.Fatalf("readStreamHeader accepted %x (%q) that parseStreamHeader refused", b, rp)
			}
			return
		}
		if rerr != nil || rp != p {
			t.Fatalf("readStreamHeader: %q, %v; parseStreamHeader: %q", rp, rerr, p)
		}
		if n > len(b) || p.Validate() != nil {
			t.Fatalf("parsed %q taking %d of %d bytes", p, n, len(b))
		}
		// The encoding is canonical: the header re-encodes to its bytes.
		if !bytes.Equal(appendStreamHeader(nil, p), b[:n]) {
			t.Fatalf("%x re-encodes as %x", b[:n], appendStreamHeader(nil, p))
		}
	})
}

func FuzzParseSignedKey(f *testing.F) {
	good, _ := marshalSignedKey(make([]byte, 36), make([]byte, 64))
	f.Add(good)
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x04, 0x04, 0x00, 0x04, 0x00})
	f.Add([]byte{0x30, 0x80, 0x04, 0x00, 0x04, 0x00, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		pub, sig, err := parseSignedKey(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidCertificate) {
				t.Fatalf("error %v is not ErrInvalidCertificate", err)
			}
			return
		}
		// DER is canonical: what parses re-encodes to the same bytes.
		again, err := marshalSignedKey(pub, sig)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%x re-encodes as %x (%v)", b, again, err)
		}
	})
}

// FuzzParseCertificate feeds arbitrary bytes to the whole peer certificate
// check; only a certificate proving an identity may pass.
func FuzzParseCertificate(f *testing.F) {
	f.Add(mustCert(f, certOpts{}).Certificate[0])
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	now := time.Now()
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := verifyCertificate([][]byte{b}, now)
		if err != nil {
			if !errors.Is(err, ErrInvalidCertificate) {
				t.Fatalf("error %v is not ErrInvalidCertificate", err)
			}
			return
		}
		if id.Validate() != nil {
			t.Fatalf("accepted with invalid ID %q", id)
		}
	})
}
