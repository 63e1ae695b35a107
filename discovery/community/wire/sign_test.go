package wire

import (
	"bytes"
	"crypto/ed25519"
	"math/rand/v2"
	"testing"

	"github.com/ipv8/go-ipv8/peer"
)

func TestSealIsCryptoEd25519Sign(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 50 {
		k, err := peer.GenerateKey(rand.NewChaCha8([32]byte{byte(i)}))
		if err != nil {
			t.Fatal(err)
		}
		s := NewSigner(k)
		msg := make([]byte, rng.IntN(400))
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		got := s.Seal(bytes.Clone(msg), 0)[len(msg):]
		if want := ed25519.Sign(k.Ed25519(), msg); !bytes.Equal(got, want) {
			t.Fatalf("key %d: signature %x, crypto/ed25519 %x", i, got, want)
		}
	}
}
