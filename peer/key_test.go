package peer

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipv8/go-ipv8/internal/pyvectors"
)

func TestPyIPv8KeyVectorsReproduced(t *testing.T) {
	v := pyvectors.Must()
	k, err := NewKeyFromParts(v.Bytes("ed25519_seed"), v.Bytes("x25519_secret"))
	if err != nil {
		t.Fatal(err)
	}
	if got := k.MarshalLibNaCLSK(); !bytes.Equal(got, v.Bytes("private_key_bin")) {
		t.Fatalf("LibNaCLSK\n got %x\nwant %x", got, v.Bytes("private_key_bin"))
	}
	if got := k.Public().MarshalLibNaCLPK(); !bytes.Equal(got, v.Bytes("public_key_bin")) {
		t.Fatalf("LibNaCLPK\n got %x\nwant %x", got, v.Bytes("public_key_bin"))
	}
	mid := k.Public().Mid()
	if !bytes.Equal(mid[:], v.Bytes("mid")) {
		t.Fatalf("mid got %x want %x", mid, v.Bytes("mid"))
	}
	// Round trip of both forms.
	k2, err := ParseLibNaCLSK(v.Bytes("private_key_bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !k2.Public().Equal(k.Public()) {
		t.Fatal("parsed LibNaCLSK gives another public key")
	}
	pub, err := ParseLibNaCLPK(v.Bytes("public_key_bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(k.Public()) {
		t.Fatal("parsed LibNaCLPK differs")
	}
	// py-ipv8's X25519 key is independent of its Ed25519 key.
	if pub.IsNative() {
		t.Fatal("a libnacl key pair must not look derived")
	}
}

// The pair below was printed by go-libp2p v0.51.0 (crypto.KeyPairFromStdKey
// + peer.IDFromPrivateKey) for the Ed25519 seed 0x20..0x3f.
const (
	libp2pSeedHex  = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	libp2pID       = "12D3KooWCd3eX8r5ihRvzK7P1yPq5aakaBJhG5GNj18YTztPhoCa"
	libp2pPubPBHex = "0801122029acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7"
	libp2pSeed2Hex = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
	libp2pID2      = "12D3KooWFBvs6WLJTomf12a6JgqMaDDoMWFZjK5UKQEFdNEZELHH"
)

func TestIDMatchesLibp2p(t *testing.T) {
	for _, c := range []struct{ seed, id string }{{libp2pSeedHex, libp2pID}, {libp2pSeed2Hex, libp2pID2}} {
		seed, _ := hex.DecodeString(c.seed)
		k, err := NewKeyFromSeed(seed)
		if err != nil {
			t.Fatal(err)
		}
		if got := k.ID().String(); got != c.id {
			t.Fatalf("ID of seed %s = %s, want %s", c.seed, got, c.id)
		}
		id, err := Decode(c.id)
		if err != nil {
			t.Fatal(err)
		}
		ed, err := id.Ed25519()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ed, k.Public().Ed25519()) {
			t.Fatal("ID parsed from libp2p text does not embed the same key")
		}
	}
	pb, _ := hex.DecodeString(libp2pPubPBHex)
	seed, _ := hex.DecodeString(libp2pSeedHex)
	k, _ := NewKeyFromSeed(seed)
	if got := MarshalLibp2pPublicKey(k.Public().Ed25519()); !bytes.Equal(got, pb) {
		t.Fatalf("protobuf public key %x want %x", got, pb)
	}
}

func TestNativeX25519DerivedFromID(t *testing.T) {
	k, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.ID().PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pub.X25519(), k.Public().X25519()) {
		t.Fatal("X25519 key computed from the ID differs from the key's own")
	}
	if !k.Public().IsNative() {
		t.Fatal("generated key not native")
	}
}

func TestSignVerify(t *testing.T) {
	k, _ := GenerateKey(nil)
	sig := k.Sign([]byte("msg"))
	if !k.Public().Verify([]byte("msg"), sig) {
		t.Fatal("valid signature refused")
	}
	sig[0] ^= 1
	if k.Public().Verify([]byte("msg"), sig) {
		t.Fatal("tampered signature accepted")
	}
	if k.Public().Verify([]byte("msg"), sig[:10]) {
		t.Fatal("short signature accepted")
	}
}

func TestDecodeRejectsBadIDs(t *testing.T) {
	for _, s := range []string{"", "0OIl", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", "12D3KooW", "12D3KooWCd3eX8r5ihRvzK7P1yPq5aakaBJhG5GNj18YTztPhoCb1"} {
		if _, err := Decode(s); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Decode(%q) err = %v, want ErrInvalidID", s, err)
		}
	}
	var id ID
	if err := id.UnmarshalText([]byte(libp2pID)); err != nil || id.String() != libp2pID {
		t.Fatalf("UnmarshalText: %v %s", err, id)
	}
	b, _ := id.MarshalText()
	if string(b) != libp2pID {
		t.Fatal("MarshalText")
	}
}

func TestParseRejectsBadKeys(t *testing.T) {
	if _, err := ParseLibNaCLSK([]byte("LibNaCLSK:short")); !errors.Is(err, ErrInvalidKey) {
		t.Fatal(err)
	}
	bad := append([]byte("LibNaCLPK:"), make([]byte, 64)...)
	bad[42] = 2 // y = 2 has no x on the curve
	if _, err := ParseLibNaCLPK(bad); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("non-point accepted: %v", err)
	}
	if _, err := PublicKeyFromEd25519(make(ed25519.PublicKey, 3)); !errors.Is(err, ErrInvalidKey) {
		t.Fatal(err)
	}
}

func TestKeyFilePersistsWithPrivateMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	k2, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k1.ID() != k2.ID() {
		t.Fatal("identity changed across restart")
	}
	os.Chmod(filepath.Join(dir, KeyFileName), 0o644)
	if _, err := LoadOrCreateKey(dir); err == nil {
		t.Fatal("world-readable key file accepted")
	}
}
