package noise

import (
	"crypto/ecdh"
	"crypto/rand"
	"testing"

	cx25519 "github.com/cloudflare/circl/dh/x25519"
	voix25519 "github.com/oasisprotocol/curve25519-voi/primitives/x25519"
)

// The X25519 implementations available in Go, on this machine: what bounds
// a handshake's CPU (docs/PERFORMANCE.md, "Why handshakes/s misses 5×").
// x25519 and newEphemeral are the ones this package uses.

func BenchmarkX25519(b *testing.B) {
	priv, peer := make([]byte, 32), make([]byte, 32)
	rand.Read(priv)
	rand.Read(peer)
	var pub [32]byte
	x25519Base(&pub, peer)
	b.Run("circl (used)", func(b *testing.B) {
		var dst [32]byte
		for b.Loop() {
			if err := x25519(&dst, priv, pub[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("crypto-ecdh", func(b *testing.B) {
		k, err := ecdh.X25519().NewPrivateKey(priv)
		if err != nil {
			b.Fatal(err)
		}
		p, err := ecdh.X25519().NewPublicKey(pub[:])
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := k.ECDH(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("voi-ladder", func(b *testing.B) {
		for b.Loop() {
			if _, err := voix25519.X25519(priv, pub[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkX25519Base(b *testing.B) {
	var priv, pub [32]byte
	rand.Read(priv[:])
	b.Run("filippo-edwards (used)", func(b *testing.B) {
		for b.Loop() {
			x25519BaseEdwards(&pub, &priv)
		}
	})
	b.Run("voi-edwards", func(b *testing.B) {
		for b.Loop() {
			voix25519.ScalarBaseMult(&pub, &priv)
		}
	})
	b.Run("circl-ladder", func(b *testing.B) {
		var s, out cx25519.Key
		copy(s[:], priv[:])
		for b.Loop() {
			cx25519.KeyGen(&out, &s)
		}
	})
}
