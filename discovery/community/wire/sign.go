package wire

import (
	"crypto/sha512"
	"hash"

	"filippo.io/edwards25519"
)

// ed25519Expanded is an Ed25519 secret expanded from its seed as RFC 8032
// section 5.1.5 says: the clamped secret scalar and the nonce prefix.
type ed25519Expanded struct {
	s      *edwards25519.Scalar
	prefix [32]byte
}

func expand(seed []byte) ed25519Expanded {
	h := sha512.Sum512(seed)
	s, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	if err != nil {
		panic("wire: clamping a 32-byte scalar failed: " + err.Error())
	}
	e := ed25519Expanded{s: s}
	copy(e.prefix[:], h[32:])
	return e
}

// sign appends the signature of msg (RFC 8032 section 5.1.6) to out. msg
// may alias out's contents: out's capacity is grown before anything is
// appended. The scalar multiplication is edwards25519's constant-time one.
func (e *ed25519Expanded) sign(out, msg, pub []byte, h hash.Hash) []byte {
	var digest [64]byte
	h.Reset()
	h.Write(e.prefix[:])
	h.Write(msg)
	r, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(digest[:0]))
	R := new(edwards25519.Point).ScalarBaseMult(r).Bytes()
	h.Reset()
	h.Write(R)
	h.Write(pub)
	h.Write(msg)
	k, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(digest[:0]))
	S := edwards25519.NewScalar().MultiplyAdd(k, e.s, r)
	out = append(out, R...)
	return append(out, S.Bytes()...)
}
