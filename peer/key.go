package peer

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"

	"filippo.io/edwards25519"
	"golang.org/x/crypto/curve25519"
)

// Sizes of the key material.
const (
	SeedSize        = ed25519.SeedSize // 32
	X25519KeySize   = curve25519.ScalarSize
	SignatureSize   = ed25519.SignatureSize
	LibNaCLPKSize   = len(libNaCLPKPrefix) + 2*32 // 74
	LibNaCLSKSize   = len(libNaCLSKPrefix) + 2*32 // 74
	MidSize         = sha1.Size                   // 20
	libNaCLPKPrefix = "LibNaCLPK:"
	libNaCLSKPrefix = "LibNaCLSK:"
)

// Errors a caller may branch on.
var (
	ErrInvalidKey       = errors.New("peer: invalid key")
	ErrInvalidSignature = errors.New("peer: invalid signature")
)

// PublicKey is a peer's public identity: its Ed25519 signing key and the
// X25519 key it uses for key agreement (its Noise static key).
type PublicKey struct {
	ed ed25519.PublicKey // 32 bytes
	x  [32]byte
}

// PrivateKey is a peer's secret identity.
type PrivateKey struct {
	ed  ed25519.PrivateKey // 64 bytes: seed + public
	x   [32]byte           // X25519 secret scalar (as stored, unclamped form allowed)
	sec expandedSecret     // the Ed25519 secret expanded for signing
	pub PublicKey
}

// GenerateKey creates a new identity from rand (crypto/rand when nil). Its
// X25519 key is derived from the Ed25519 key.
func GenerateKey(r io.Reader) (*PrivateKey, error) {
	if r == nil {
		r = rand.Reader
	}
	seed := make([]byte, SeedSize)
	if _, err := io.ReadFull(r, seed); err != nil {
		return nil, fmt.Errorf("peer: generating key: %w", err)
	}
	return NewKeyFromSeed(seed)
}

// NewKeyFromSeed builds the native identity of a 32-byte Ed25519 seed: the
// X25519 secret is libsodium's crypto_sign_ed25519_sk_to_curve25519 of it.
func NewKeyFromSeed(seed []byte) (*PrivateKey, error) {
	if len(seed) != SeedSize {
		return nil, fmt.Errorf("%w: seed is %d bytes, want %d", ErrInvalidKey, len(seed), SeedSize)
	}
	h := sha512.Sum512(seed)
	var x [32]byte
	copy(x[:], h[:32])
	x[0] &= 248
	x[31] &= 127
	x[31] |= 64
	return newKey(seed, x)
}

// NewKeyFromParts builds an identity from an Ed25519 seed and an independent
// X25519 secret, as py-ipv8 (libnacl) keys are made.
func NewKeyFromParts(seed, x25519Secret []byte) (*PrivateKey, error) {
	if len(seed) != SeedSize || len(x25519Secret) != X25519KeySize {
		return nil, fmt.Errorf("%w: want a %d-byte seed and a %d-byte X25519 secret", ErrInvalidKey, SeedSize, X25519KeySize)
	}
	var x [32]byte
	copy(x[:], x25519Secret)
	return newKey(seed, x)
}

func newKey(seed []byte, x [32]byte) (*PrivateKey, error) {
	k := &PrivateKey{ed: ed25519.NewKeyFromSeed(seed), x: x}
	sec, err := expandSeed(seed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	k.sec = sec
	xpub, err := curve25519.X25519(x[:], curve25519.Basepoint)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	k.pub.ed = k.ed.Public().(ed25519.PublicKey)
	copy(k.pub.x[:], xpub)
	return k, nil
}

// Public returns the public half.
func (k *PrivateKey) Public() *PublicKey { p := k.pub; return &p }

// ID returns the peer.ID of the key.
func (k *PrivateKey) ID() ID { return IDFromPublicKey(&k.pub) }

// Seed returns the 32-byte Ed25519 seed.
func (k *PrivateKey) Seed() []byte { return k.ed.Seed() }

// Ed25519 returns the Ed25519 private key (seed + public).
func (k *PrivateKey) Ed25519() ed25519.PrivateKey { return k.ed }

// X25519 returns the X25519 secret (the Noise static private key).
func (k *PrivateKey) X25519() []byte { x := k.x; return x[:] }

// MarshalLibNaCLSK returns py-ipv8's private key form:
// "LibNaCLSK:" + X25519 secret + Ed25519 seed.
func (k *PrivateKey) MarshalLibNaCLSK() []byte {
	b := make([]byte, 0, LibNaCLSKSize)
	b = append(b, libNaCLSKPrefix...)
	b = append(b, k.x[:]...)
	return append(b, k.ed.Seed()...)
}

// ParseLibNaCLSK reads py-ipv8's private key form; the identity keeps the
// X25519 key it carries.
func ParseLibNaCLSK(b []byte) (*PrivateKey, error) {
	if len(b) != LibNaCLSKSize || !bytes.HasPrefix(b, []byte(libNaCLSKPrefix)) {
		return nil, fmt.Errorf("%w: not a %d-byte LibNaCLSK key", ErrInvalidKey, LibNaCLSKSize)
	}
	b = b[len(libNaCLSKPrefix):]
	return NewKeyFromParts(b[32:], b[:32])
}

// Ed25519 returns the Ed25519 public key.
func (p *PublicKey) Ed25519() ed25519.PublicKey { return p.ed }

// X25519 returns the X25519 public key (the Noise static public key).
func (p *PublicKey) X25519() []byte { x := p.x; return x[:] }

// Equal reports whether both halves of the keys are the same.
func (p *PublicKey) Equal(o *PublicKey) bool {
	return o != nil && bytes.Equal(p.ed, o.ed) && p.x == o.x
}

// MarshalLibNaCLPK returns py-ipv8's public key form:
// "LibNaCLPK:" + X25519 public + Ed25519 public (74 bytes).
func (p *PublicKey) MarshalLibNaCLPK() []byte {
	b := make([]byte, 0, LibNaCLPKSize)
	b = append(b, libNaCLPKPrefix...)
	b = append(b, p.x[:]...)
	return append(b, p.ed...)
}

// Mid returns py-ipv8's member ID: SHA-1 of the LibNaCLPK form.
func (p *PublicKey) Mid() [MidSize]byte { return sha1.Sum(p.MarshalLibNaCLPK()) }

// ParseLibNaCLPK reads py-ipv8's public key form.
func ParseLibNaCLPK(b []byte) (*PublicKey, error) {
	if len(b) != LibNaCLPKSize || !bytes.HasPrefix(b, []byte(libNaCLPKPrefix)) {
		return nil, fmt.Errorf("%w: not a %d-byte LibNaCLPK key", ErrInvalidKey, LibNaCLPKSize)
	}
	b = b[len(libNaCLPKPrefix):]
	p := &PublicKey{ed: append(ed25519.PublicKey(nil), b[32:]...)}
	copy(p.x[:], b[:32])
	if _, err := new(edwards25519.Point).SetBytes(p.ed); err != nil {
		return nil, fmt.Errorf("%w: Ed25519 key is not a curve point", ErrInvalidKey)
	}
	return p, nil
}

// PublicKeyFromEd25519 returns the native public identity of an Ed25519 key:
// its X25519 half is the birational (Montgomery) image of the Ed25519 point,
// libsodium's crypto_sign_ed25519_pk_to_curve25519.
func PublicKeyFromEd25519(pub ed25519.PublicKey) (*PublicKey, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: Ed25519 key is %d bytes", ErrInvalidKey, len(pub))
	}
	pt, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: Ed25519 key is not a curve point", ErrInvalidKey)
	}
	p := &PublicKey{ed: append(ed25519.PublicKey(nil), pub...)}
	copy(p.x[:], pt.BytesMontgomery())
	return p, nil
}

// IsNative reports whether the X25519 half is the one derived from the
// Ed25519 half (true for identities made by this library).
func (p *PublicKey) IsNative() bool {
	n, err := PublicKeyFromEd25519(p.ed)
	return err == nil && n.x == p.x
}
