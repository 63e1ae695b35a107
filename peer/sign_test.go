package peer

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	"filippo.io/edwards25519"

	"github.com/ipv8/go-ipv8/internal/pyvectors"
)

func TestSignMatchesCryptoEd25519OnRandomKeys(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		seed := make([]byte, SeedSize)
		for j := range seed {
			seed[j] = byte(rng.Uint32())
		}
		k, err := NewKeyFromSeed(seed)
		if err != nil {
			t.Fatal(err)
		}
		msg := make([]byte, rng.IntN(600))
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		want := ed25519.Sign(ed25519.NewKeyFromSeed(seed), msg)
		if got := k.Sign(msg); !bytes.Equal(got, want) {
			t.Fatalf("key %d, %d-byte message: signature\n got %x\nwant %x", i, len(msg), got, want)
		}
		// AppendSign with the message aliasing the output buffer.
		buf := append(make([]byte, 0, len(msg)+SignatureSize), msg...)
		buf = k.AppendSign(buf, buf)
		if !bytes.Equal(buf[:len(msg)], msg) || !bytes.Equal(buf[len(msg):], want) {
			t.Fatalf("key %d: AppendSign over its own buffer differs from crypto/ed25519", i)
		}
		if !k.Public().Verify(msg, want) {
			t.Fatalf("key %d: own signature refused", i)
		}
	}
}

func TestSignReproducesPyIPv8Key(t *testing.T) {
	v := pyvectors.Must()
	k, err := NewKeyFromParts(v.Bytes("ed25519_seed"), v.Bytes("x25519_secret"))
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("py-ipv8 vector key")
	if got, want := k.Sign(msg), ed25519.Sign(ed25519.NewKeyFromSeed(v.Bytes("ed25519_seed")), msg); !bytes.Equal(got, want) {
		t.Fatalf("signature of the py-ipv8 key differs from crypto/ed25519's")
	}
}

// smallOrder are encodings of the eight points of order dividing 8, in
// canonical and non-canonical forms (libsodium's block list), checked below.
var smallOrder = []string{
	"0000000000000000000000000000000000000000000000000000000000000000", // order 4
	"0100000000000000000000000000000000000000000000000000000000000000", // identity
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // order 2 (y = p−1)
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p: non-canonical 0
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p+1: non-canonical identity
}

// edgeEncodings are the small-order encodings and each with the sign bit
// flipped (x = 0 with the sign bit set, among others).
func edgeEncodings(t *testing.T) [][]byte {
	var out [][]byte
	for _, s := range smallOrder {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		if p, err := new(edwards25519.Point).SetBytes(b); err == nil {
			if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) != 1 {
				t.Fatalf("%s is not of small order", s)
			}
		}
		flipped := bytes.Clone(b)
		flipped[31] ^= 0x80
		out = append(out, b, flipped)
	}
	return out
}

// scalarEdges are S values around 0 and the group order L.
func scalarEdges() [][]byte {
	le := func(hexBE string) []byte {
		b, _ := hex.DecodeString(hexBE)
		for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
			b[i], b[j] = b[j], b[i]
		}
		return b
	}
	return [][]byte{
		make([]byte, 32),
		le("0000000000000000000000000000000000000000000000000000000000000001"),
		le("1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3ec"), // L−1
		le("1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3ed"), // L
		le("1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3ee"), // L+1
		le("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
	}
}

// Every combination of small-order key, small-order R and edge S must get
// crypto/ed25519's answer, and some of them are accepted by it (so the
// comparison is not only of refusals).
func TestVerifyAgreesWithCryptoEd25519OnEdgeCases(t *testing.T) {
	encs := edgeEncodings(t)
	accepted, total := 0, 0
	for _, a := range encs {
		pub := &PublicKey{ed: ed25519.PublicKey(a)}
		for _, r := range encs {
			for _, s := range scalarEdges() {
				sig := append(bytes.Clone(r), s...)
				for _, msg := range [][]byte{nil, []byte("m"), []byte("another message")} {
					want := ed25519.Verify(ed25519.PublicKey(a), msg, sig)
					if got := pub.Verify(msg, sig); got != want {
						t.Fatalf("A=%x R=%x S=%x msg=%q: got %v, crypto/ed25519 says %v", a, r, s, msg, got, want)
					}
					total++
					if want {
						accepted++
					}
				}
			}
		}
	}
	if accepted == 0 || accepted == total {
		t.Fatalf("%d of %d edge cases accepted: the table does not exercise both answers", accepted, total)
	}
}

// torsion8 is a point of order 8.
func torsion8(t *testing.T) *edwards25519.Point {
	b, _ := hex.DecodeString(smallOrder[2])
	p, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func hashScalar(parts ...[]byte) *edwards25519.Scalar {
	h := sha512.New()
	for _, p := range parts {
		h.Write(p)
	}
	s, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	return s
}

// Signatures crafted with torsion components (a key A = aB + T, or a nonce
// point R = rB + T) are what a cofactored verifier accepts and
// crypto/ed25519 refuses (or accepts only when k·T vanishes): Verify must
// follow crypto/ed25519 on each, and non-canonical S (S + L) is refused.
func TestVerifyAgreesWithCryptoEd25519OnTorsionAndMalleability(t *testing.T) {
	T := torsion8(t)
	rng := rand.New(rand.NewPCG(3, 4))
	random := func() *edwards25519.Scalar {
		b := make([]byte, 64)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		s, _ := edwards25519.NewScalar().SetUniformBytes(b)
		return s
	}
	outcomes := map[bool]int{}
	check := func(what string, A, msg, sig []byte) bool {
		t.Helper()
		want := ed25519.Verify(A, msg, sig)
		if got := (&PublicKey{ed: A}).Verify(msg, sig); got != want {
			t.Fatalf("%s: got %v, crypto/ed25519 says %v", what, got, want)
		}
		outcomes[want]++
		return want
	}
	for i := range 64 {
		msg := []byte{byte(i), 'm'}
		a, r := random(), random()
		Apure := new(edwards25519.Point).ScalarBaseMult(a)
		Rpure := new(edwards25519.Point).ScalarBaseMult(r)
		sign := func(A, R *edwards25519.Point) []byte {
			k := hashScalar(R.Bytes(), A.Bytes(), msg)
			S := edwards25519.NewScalar().MultiplyAdd(k, a, r)
			return append(R.Bytes(), S.Bytes()...)
		}
		// Honest signature: accepted; S + L refused.
		sig := sign(Apure, Rpure)
		if !check("honest", Apure.Bytes(), msg, sig) {
			t.Fatal("an honest crafted signature is refused")
		}
		check("S+L", Apure.Bytes(), msg, addL(sig))
		// Key with a torsion component.
		Amixed := new(edwards25519.Point).Add(Apure, T)
		check("mixed-order key", Amixed.Bytes(), msg, sign(Amixed, Rpure))
		// Nonce point with a torsion component: cofactored-valid only.
		Rmixed := new(edwards25519.Point).Add(Rpure, T)
		if check("mixed-order R", Apure.Bytes(), msg, sign(Apure, Rmixed)) {
			t.Fatal("crypto/ed25519 accepted a torsioned R: the case is not what it claims")
		}
	}
	if outcomes[true] == 0 || outcomes[false] == 0 {
		t.Fatalf("outcomes %v: both answers must occur", outcomes)
	}
}

// addL returns sig with L added to its S (the same scalar, non-canonical).
func addL(sig []byte) []byte {
	out := bytes.Clone(sig)
	l, _ := hex.DecodeString("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
	var carry uint16
	for i := range 32 {
		v := uint16(out[32+i]) + uint16(l[i]) + carry
		out[32+i], carry = byte(v), v>>8
	}
	return out
}

func BenchmarkSign(b *testing.B) {
	k, _ := NewKeyFromSeed(make([]byte, 32))
	msg := make([]byte, 150)
	sig := make([]byte, 0, SignatureSize)
	for b.Loop() {
		sig = k.AppendSign(sig[:0], msg)
	}
}

func BenchmarkVerify(b *testing.B) {
	k, _ := NewKeyFromSeed(make([]byte, 32))
	msg := make([]byte, 150)
	sig := k.Sign(msg)
	pub := k.Public()
	for b.Loop() {
		if !pub.Verify(msg, sig) {
			b.Fatal("refused")
		}
	}
}

// FuzzVerifyAgreesWithCryptoEd25519 compares Verify with crypto/ed25519 on
// arbitrary keys, messages and signatures (seeded with a valid signature,
// small-order keys and points, and S + L).
func FuzzVerifyAgreesWithCryptoEd25519(f *testing.F) {
	k, _ := NewKeyFromSeed(make([]byte, 32))
	sig := k.Sign([]byte("m"))
	f.Add([]byte(k.Public().Ed25519()), []byte("m"), sig)
	f.Add([]byte(k.Public().Ed25519()), []byte("m"), addL(sig))
	for _, s := range smallOrder {
		b, _ := hex.DecodeString(s)
		f.Add(b, []byte("m"), append(bytes.Clone(b), make([]byte, 32)...))
	}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		if len(pub) != 32 {
			return
		}
		want := ed25519.Verify(pub, msg, sig)
		if got := (&PublicKey{ed: bytes.Clone(pub)}).Verify(msg, sig); got != want {
			t.Fatalf("A=%x sig=%x: got %v, crypto/ed25519 says %v", pub, sig, got, want)
		}
	})
}
