package fastverify

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	"filippo.io/edwards25519/field"
)

func TestTwoDIsTheCurveConstant(t *testing.T) {
	// d of edwards25519, little-endian (RFC 8032 section 5.1).
	dBytes, _ := hex.DecodeString("a3785913ca4deb75abd841414d0a700098e879777940c78c73fe6f2bee6c0352")
	var d field.Element
	d.SetBytes(dBytes)
	d.Add(&d, &d)
	if d.Equal(d2) != 1 {
		t.Fatal("2d differs from RFC 8032's d")
	}
}

// Every verdict must be crypto/ed25519's, on both paths, for valid
// signatures and for every kind of corruption.
func TestVerifyAgreesWithCryptoEd25519(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	seed := make([]byte, 32)
	for i := range 40 {
		for j := range seed {
			seed[j] = byte(rng.Uint32())
		}
		priv := ed25519.NewKeyFromSeed(seed)
		pub := priv.Public().(ed25519.PublicKey)
		k, err := NewKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			k.Precompute()
		}
		msg := make([]byte, rng.IntN(300))
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		sig := ed25519.Sign(priv, msg)
		cases := map[string][2][]byte{"valid": {msg, sig}}
		for _, pos := range []int{0, 17, 31, 32, 50, 63} {
			bad := bytes.Clone(sig)
			bad[pos] ^= 1 << (rng.IntN(8))
			cases["sig bit "+string(rune('0'+pos%10))+string(rune('a'+pos/10))] = [2][]byte{msg, bad}
		}
		if len(msg) > 0 {
			m := bytes.Clone(msg)
			m[rng.IntN(len(m))] ^= 0x40
			cases["message"] = [2][]byte{m, sig}
		}
		// S + L: the same point equation, but not canonical.
		nonCanon := bytes.Clone(sig)
		addL(nonCanon[32:])
		cases["S+L"] = [2][]byte{msg, nonCanon}
		cases["short"] = [2][]byte{msg, sig[:63]}
		for name, c := range cases {
			want := ed25519.Verify(pub, c[0], c[1])
			if got := k.Verify(c[0], c[1]); got != want {
				t.Fatalf("key %d (precomputed %t), %s: got %t, crypto/ed25519 %t", i, k.Precomputed(), name, got, want)
			}
		}
		if !k.Verify(msg, sig) {
			t.Fatal("valid signature refused")
		}
	}
}

// addL adds the group order L to a little-endian 32-byte scalar.
func addL(s []byte) {
	l, _ := hex.DecodeString("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
	c := 0
	for i := range 32 {
		v := int(s[i]) + int(l[i]) + c
		s[i], c = byte(v), v>>8
	}
}

func TestScalarExtremesOnTablePath(t *testing.T) {
	// Digits at the edges of the recoding (all 0xff windows, carries
	// through every position) must give the same point as the library.
	k, _ := NewKey(ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey))
	k.Precompute()
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	for i := range 2000 {
		msg := []byte{byte(i), byte(i >> 8)}
		sig := ed25519.Sign(priv, msg)
		if !k.Verify(msg, sig) {
			t.Fatalf("message %d refused on the table path", i)
		}
	}
}

func FuzzVerifyAgreesWithCryptoEd25519(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	pub := priv.Public().(ed25519.PublicKey)
	f.Add([]byte("message"), ed25519.Sign(priv, []byte("message")), true)
	f.Add([]byte(""), make([]byte, 64), false)
	slow, _ := NewKey(pub)
	fast, _ := NewKey(pub)
	fast.Precompute()
	f.Fuzz(func(t *testing.T, msg, sig []byte, resign bool) {
		if resign && len(sig) >= 64 {
			// Half the corpus mutates a valid signature, so both
			// verdicts get exercised.
			valid := ed25519.Sign(priv, msg)
			for i := range 64 {
				valid[i] ^= sig[i] & 0x01
			}
			sig = valid
		}
		want := ed25519.Verify(pub, msg, sig)
		if got := fast.Verify(msg, sig); got != want {
			t.Fatalf("table path %t, crypto/ed25519 %t", got, want)
		}
		if got := slow.Verify(msg, sig); got != want {
			t.Fatalf("cached-point path %t, crypto/ed25519 %t", got, want)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	pub := priv.Public().(ed25519.PublicKey)
	msg := make([]byte, 200)
	sig := ed25519.Sign(priv, msg)
	b.Run("crypto-ed25519", func(b *testing.B) {
		for b.Loop() {
			ed25519.Verify(pub, msg, sig)
		}
	})
	b.Run("cached-point", func(b *testing.B) {
		k, _ := NewKey(pub)
		for b.Loop() {
			k.Verify(msg, sig)
		}
	})
	b.Run("precomputed", func(b *testing.B) {
		k, _ := NewKey(pub)
		k.Precompute()
		for b.Loop() {
			k.Verify(msg, sig)
		}
	})
	b.Run("precompute", func(b *testing.B) {
		k, _ := NewKey(pub)
		for b.Loop() {
			k.Drop()
			k.Precompute()
		}
	})
}

// VerifyMany gives crypto/ed25519's verdict on each of a mix of keys with
// and without tables and of valid, corrupted and non-canonical signatures.
func TestVerifyManyAgreesWithCryptoEd25519(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	var (
		keys       []*Key
		msgs, sigs [][]byte
		want       []bool
	)
	seed := make([]byte, 32)
	for i := range 8 {
		for j := range seed {
			seed[j] = byte(rng.Uint32())
		}
		priv := ed25519.NewKeyFromSeed(seed)
		pub := priv.Public().(ed25519.PublicKey)
		k, _ := NewKey(pub)
		if i%4 != 3 {
			k.Precompute()
		}
		for m := range 6 {
			msg := []byte{byte(i), byte(m), 'x'}
			sig := ed25519.Sign(priv, msg)
			switch m {
			case 1:
				sig[rng.IntN(32)] ^= 1 << rng.IntN(8) // R
			case 2:
				sig[32+rng.IntN(31)] ^= 1 << rng.IntN(8) // S
			case 3:
				addL(sig[32:])
			case 4:
				msg = []byte("another")
			}
			keys, msgs, sigs = append(keys, k), append(msgs, msg), append(sigs, sig)
			want = append(want, ed25519.Verify(pub, msg, sig))
		}
	}
	got := make([]bool, len(keys))
	VerifyMany(keys, msgs, sigs, got)
	valid := 0
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("check %d (key %d, table %t): got %t, crypto/ed25519 %t", i, i/6, keys[i].Precomputed(), got[i], want[i])
		}
		if got[i] {
			valid++
		}
	}
	if valid != 16 {
		t.Fatalf("%d valid, want 16 (two per key)", valid)
	}
}

func BenchmarkVerifyMany(b *testing.B) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	k, _ := NewKey(priv.Public().(ed25519.PublicKey))
	k.Precompute()
	const n = 64
	keys := make([]*Key, n)
	msgs, sigs := make([][]byte, n), make([][]byte, n)
	for i := range n {
		keys[i], msgs[i] = k, make([]byte, 200)
		msgs[i][0] = byte(i)
		sigs[i] = ed25519.Sign(priv, msgs[i])
	}
	ok := make([]bool, n)
	for b.Loop() {
		VerifyMany(keys, msgs, sigs, ok)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sig")
}
