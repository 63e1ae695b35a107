package noise

import (
	"bytes"
	"crypto/rand"
	"testing"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/curve25519"

	"github.com/ipv8/go-ipv8/peer"
)

func TestX25519MatchesReference(t *testing.T) {
	for i := 0; i < 200; i++ {
		a, b := make([]byte, 32), make([]byte, 32)
		rand.Read(a)
		rand.Read(b)
		var pubA [32]byte
		x25519Base(&pubA, a)
		ref, _ := curve25519.X25519(a, curve25519.Basepoint)
		if !bytes.Equal(pubA[:], ref) {
			t.Fatalf("base multiplication differs from x/crypto")
		}
		var got [32]byte
		if err := x25519(&got, b, pubA[:]); err != nil {
			t.Fatal(err)
		}
		want, _ := curve25519.X25519(b, pubA[:])
		if !bytes.Equal(got[:], want) {
			t.Fatalf("X25519 differs from x/crypto for scalar %x, point %x", b, pubA)
		}
	}
}

func TestX25519MatchesReferenceOnMixedOrderPoints(t *testing.T) {
	// P + T with T of order 8: clamping makes the scalar a multiple of 8,
	// which kills T, so the result must equal x/crypto's for the same bytes.
	tPoint := edwardsFromU(t, mustHex(t, "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"))
	for i := 0; i < 50; i++ {
		k := make([]byte, 64)
		rand.Read(k)
		sc, _ := edwards25519.NewScalar().SetUniformBytes(k)
		p := new(edwards25519.Point).ScalarBaseMult(sc)
		mixed := new(edwards25519.Point).Add(p, tPoint).BytesMontgomery()
		s := make([]byte, 32)
		rand.Read(s)
		var got [32]byte
		if err := x25519(&got, s, mixed); err != nil {
			t.Fatal(err)
		}
		want, _ := curve25519.X25519(s, mixed)
		if !bytes.Equal(got[:], want) {
			t.Fatal("mixed-order point: X25519 differs from x/crypto")
		}
	}
}

func edwardsFromU(t *testing.T, u []byte) *edwards25519.Point {
	var fu, one, num, den, y field.Element
	fu.SetBytes(u)
	one.One()
	num.Subtract(&fu, &one)
	den.Add(&fu, &one)
	y.Multiply(&num, den.Invert(&den))
	p, err := new(edwards25519.Point).SetBytes(y.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestX25519RefusesLowOrderPoints(t *testing.T) {
	low := []string{
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	}
	for _, h := range low {
		u := mustHex(t, h)
		s := make([]byte, 32)
		rand.Read(s)
		var out [32]byte
		if err := x25519(&out, s, u); err == nil {
			t.Fatalf("low-order point %s accepted", h)
		}
		if _, err := curve25519.X25519(s, u); err == nil {
			t.Fatalf("x/crypto accepted low-order point")
		}
	}
	for _, u := range [][]byte{make([]byte, 32), append([]byte{1}, make([]byte, 31)...)} {
		var out [32]byte
		if err := x25519(&out, make([]byte, 32), u); err == nil {
			t.Fatalf("point %x accepted", u)
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b := make([]byte, len(s)/2)
	for i := range b {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			case c >= 'a' && c <= 'f':
				v |= byte(c-'a') + 10
			}
		}
		b[i] = v
	}
	return b
}

func TestNativeStaticMatchesDerivation(t *testing.T) {
	for i := 0; i < 50; i++ {
		k := newKey(t)
		pub := k.Public()
		if !nativeStaticMatches(pub.Ed25519(), pub.X25519()) {
			t.Fatal("native key's X25519 half not recognised")
		}
		py := newPyKey(t)
		if nativeStaticMatches(py.Public().Ed25519(), py.Public().X25519()) {
			t.Fatal("independent X25519 key taken as derived")
		}
		if nativeStaticMatches(pub.Ed25519(), py.Public().X25519()) {
			t.Fatal("another key's X25519 half taken as derived")
		}
	}
}

func TestVerifyIdentity(t *testing.T) {
	native := newKey(t)
	py := newPyKey(t)
	other := newKey(t)
	sigPy := staticSignature(py, py.Public().X25519())
	sigOther := staticSignature(other, py.Public().X25519())
	cases := []struct {
		name      string
		ed, rs, x []byte
		sig       []byte
		ok        bool
	}{
		{"native, no signature", native.Public().Ed25519(), native.Public().X25519(), nil, nil, true},
		{"native key claimed by another static", native.Public().Ed25519(), other.Public().X25519(), nil, nil, false},
		{"imported, signed", py.Public().Ed25519(), py.Public().X25519(), nil, sigPy, true},
		{"imported, unsigned", py.Public().Ed25519(), py.Public().X25519(), nil, nil, false},
		{"imported, signed by another key", py.Public().Ed25519(), py.Public().X25519(), nil, sigOther, false},
		{"imported static claimed by another identity", other.Public().Ed25519(), py.Public().X25519(), nil, sigPy, false},
		{"imported answering at its derived key, identity key signed", py.Public().Ed25519(), nativeOf(t, py), py.Public().X25519(), sigPy, true},
		{"derived key with an unsigned identity key", py.Public().Ed25519(), nativeOf(t, py), py.Public().X25519(), nil, false},
		{"no Ed25519 key", nil, native.Public().X25519(), nil, nil, false},
	}
	for _, c := range cases {
		pub, err := verifyIdentity(c.ed, c.rs, c.x, c.sig)
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v, want ok=%v", c.name, err, c.ok)
			continue
		}
		if c.ok && peer.IDFromPublicKey(pub) != peer.IDFromEd25519(c.ed) {
			t.Errorf("%s: wrong identity", c.name)
		}
	}
}

func nativeOf(t *testing.T, k *peer.PrivateKey) []byte {
	n, err := peer.NewKeyFromSeed(k.Seed())
	if err != nil {
		t.Fatal(err)
	}
	return n.Public().X25519()
}

func TestWipeAEADZeroesKey(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	c := newAEADCipher(key)
	before := c.Encrypt(nil, 1, nil, []byte("x"))
	c.wipe()
	after := c.Encrypt(nil, 1, nil, []byte("x"))
	zero, _ := chacha20poly1305.New(make([]byte, 32))
	var nonce [12]byte
	putNonce(&nonce, 1)
	want := zero.Seal(nil, nonce[:], []byte("x"), nil)
	if bytes.Equal(before, after) || !bytes.Equal(after, want) {
		t.Fatal("wiped cipher does not encrypt under the all-zero key")
	}
	if !chachaWipeable {
		t.Fatal("x/crypto's ChaCha20-Poly1305 layout changed: keys cannot be wiped")
	}
}
