package peer

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"filippo.io/edwards25519"
	ced25519 "github.com/cloudflare/circl/sign/ed25519"
	"github.com/oasisprotocol/curve25519-voi/curve"
	"github.com/oasisprotocol/curve25519-voi/curve/scalar"
)

// Where an Ed25519 signature's time goes, and what the other Go
// implementations take for the same: what bounds a community's pack+sign
// rate (docs/PERFORMANCE.md, "Why signing misses"). BenchmarkSign is the
// whole signature as this package makes it.
func BenchmarkSignParts(b *testing.B) {
	var wide [64]byte
	rand.Read(wide[:])
	r, err := scalar.NewFromBytesModOrderWide(wide[:])
	if err != nil {
		b.Fatal(err)
	}
	b.Run("voi base-point mult (used: R = r·B)", func(b *testing.B) {
		var R curve.EdwardsPoint
		for b.Loop() {
			R.MulBasepoint(curve.ED25519_BASEPOINT_TABLE, r)
		}
	})
	b.Run("voi encode R (one inversion)", func(b *testing.B) {
		var R curve.EdwardsPoint
		R.MulBasepoint(curve.ED25519_BASEPOINT_TABLE, r)
		var c curve.CompressedEdwardsY
		for b.Loop() {
			c.SetEdwardsPoint(&R)
		}
	})
	b.Run("filippo base-point mult", func(b *testing.B) {
		s, err := edwards25519.NewScalar().SetUniformBytes(wide[:])
		if err != nil {
			b.Fatal(err)
		}
		var R edwards25519.Point
		for b.Loop() {
			R.ScalarBaseMult(s)
		}
	})
	msg := make([]byte, 150)
	b.Run("crypto-ed25519 sign", func(b *testing.B) {
		k := ed25519.NewKeyFromSeed(make([]byte, 32))
		for b.Loop() {
			ed25519.Sign(k, msg)
		}
	})
	b.Run("circl sign", func(b *testing.B) {
		k := ced25519.NewKeyFromSeed(make([]byte, 32))
		for b.Loop() {
			ced25519.Sign(k, msg)
		}
	})
}
