// Package fastverify checks Ed25519 signatures with exactly the rule of
// crypto/ed25519 (and libsodium, which py-ipv8 uses): S canonical, and
// R == [S]B − [k]A with k = SHA-512(R ‖ A ‖ M) — cofactorless — but faster
// for keys that sign many messages.
//
// crypto/ed25519 decompresses A and runs a double-scalar multiplication
// with shared doublings (about 250 doublings and 70 additions) for every
// signature. Here both B and −A get fixed-base tables of their multiples
// j·2^(w·i)·P in affine form, so [S]B − [k]A is a sum of table entries: no
// doublings, about 75 additions. Lookups depend on the scalars, which is
// fine: everything a verifier handles is public. (Signing, whose nonce is
// secret, keeps crypto/ed25519's constant-time code.)
//
// B's table (w = 8, 32 positions, 491 KiB) is built once per process; a
// key's table (w = 7, 37 positions, 284 KiB) is built by Key.Precompute,
// which costs about as much as 15 verifications: worth it for a peer that
// sends a stream, not for one packet.
package fastverify

import (
	"crypto/ed25519"
	"crypto/sha512"
	"errors"
	"sync"
	"sync/atomic"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

const (
	baseWindow = 8
	keyWindow  = 7
)

// niels is an affine point as (y+x, y−x, 2d·x·y): what a mixed addition
// needs.
type niels struct{ ypx, ymx, xy2d field.Element }

// table holds j·2^(w·i)·P for j = 1…2^(w−1), in entries[i·half + j − 1].
type table struct {
	w         uint
	positions int
	entries   []niels
}

// extended is a point in extended coordinates: x = X/Z, y = Y/Z, x·y = T/Z.
type extended struct{ X, Y, Z, T field.Element }

var d2 = func() *field.Element {
	// d = −121665/121666; the table entries carry 2d.
	var num, den, d field.Element
	num.Mult32(new(field.Element).One(), 121665)
	num.Negate(&num)
	den.Mult32(new(field.Element).One(), 121666)
	d.Multiply(&num, den.Invert(&den))
	return d.Add(&d, &d)
}()

func positions(w uint) int { return (253 + int(w) - 1) / int(w) } // scalars are < 2^253

func newTable(p *edwards25519.Point, w uint) *table {
	half := 1 << (w - 1)
	n := positions(w)
	pts := make([]edwards25519.Point, 0, n*half)
	base := new(edwards25519.Point).Set(p)
	for range n {
		cur := new(edwards25519.Point).Set(base)
		for range half {
			pts = append(pts, *cur)
			cur.Add(cur, base)
		}
		for range w {
			base.Add(base, base)
		}
	}
	// Affine form with one inversion for all: Montgomery's trick.
	zs := make([]field.Element, len(pts))
	prefix := make([]field.Element, len(pts))
	var acc field.Element
	acc.One()
	for i := range pts {
		_, _, z, _ := pts[i].ExtendedCoordinates()
		zs[i] = *z
		prefix[i] = acc
		acc.Multiply(&acc, z)
	}
	var inv field.Element
	inv.Invert(&acc)
	t := &table{w: w, positions: n, entries: make([]niels, len(pts))}
	for i := len(pts) - 1; i >= 0; i-- {
		var zinv, x, y field.Element
		zinv.Multiply(&inv, &prefix[i])
		inv.Multiply(&inv, &zs[i])
		X, Y, _, _ := pts[i].ExtendedCoordinates()
		x.Multiply(X, &zinv)
		y.Multiply(Y, &zinv)
		e := &t.entries[i]
		e.ypx.Add(&y, &x)
		e.ymx.Subtract(&y, &x)
		e.xy2d.Multiply(&x, &y)
		e.xy2d.Multiply(&e.xy2d, d2)
	}
	return t
}

// addMul adds [s]P to acc, s a little-endian scalar below 2^253.
func (t *table) addMul(acc *extended, s *[32]byte) {
	half := uint32(1) << (t.w - 1)
	mask := uint32(1)<<t.w - 1
	carry := uint32(0)
	for i := range t.positions {
		bit := uint(i) * t.w
		b := bit / 8
		v := uint32(s[b])
		if b+1 < 32 {
			v |= uint32(s[b+1]) << 8
		}
		// Signed digits: a window above half becomes window − 2^w, and
		// the next window takes the carry.
		v = (v>>(bit%8))&mask + carry
		carry = 0
		neg := false
		if v > half {
			v = mask + 1 - v
			carry = 1
			neg = true
		}
		if v == 0 {
			continue
		}
		acc.addNiels(&t.entries[i*int(half)+int(v)-1], neg)
	}
}

// addNiels sets a = a ± n (add-2008-hwcd-3 with Z2 = 1; complete on
// edwards25519).
func (a *extended) addNiels(n *niels, neg bool) {
	var A, B, C, D, E, F, G, H field.Element
	ypx, ymx := &n.ypx, &n.ymx
	if neg {
		ypx, ymx = ymx, ypx
	}
	A.Subtract(&a.Y, &a.X)
	A.Multiply(&A, ymx)
	B.Add(&a.Y, &a.X)
	B.Multiply(&B, ypx)
	C.Multiply(&a.T, &n.xy2d)
	D.Add(&a.Z, &a.Z)
	E.Subtract(&B, &A)
	H.Add(&B, &A)
	if neg {
		F.Add(&D, &C)
		G.Subtract(&D, &C)
	} else {
		F.Subtract(&D, &C)
		G.Add(&D, &C)
	}
	a.X.Multiply(&E, &F)
	a.Y.Multiply(&G, &H)
	a.T.Multiply(&E, &H)
	a.Z.Multiply(&F, &G)
}

func (a *extended) identity() {
	a.X.Zero()
	a.Y.One()
	a.Z.One()
	a.T.Zero()
}

// encode returns the 32-byte encoding of a.
func (a *extended) encode(out *[32]byte) {
	var zinv field.Element
	zinv.Invert(&a.Z)
	a.encodeWith(&zinv, out)
}

// encodeWith is encode given 1/Z.
func (a *extended) encodeWith(zinv *field.Element, out *[32]byte) {
	var x, y field.Element
	x.Multiply(&a.X, zinv)
	y.Multiply(&a.Y, zinv)
	copy(out[:], y.Bytes())
	out[31] |= byte(x.IsNegative() << 7)
}

var (
	baseOnce  sync.Once
	baseTable *table
)

func base() *table {
	baseOnce.Do(func() { baseTable = newTable(edwards25519.NewGeneratorPoint(), baseWindow) })
	return baseTable
}

// ErrInvalidKey: the public key is not a curve point.
var ErrInvalidKey = errors.New("fastverify: public key is not a valid Ed25519 point")

// Key is a public key prepared for verification. It is safe for
// concurrent use; Precompute may run while other goroutines verify.
type Key struct {
	pub  ed25519.PublicKey
	negA *edwards25519.Point
	tbl  atomic.Pointer[table]
}

// NewKey decompresses pub once (crypto/ed25519 does it on every call).
func NewKey(pub ed25519.PublicKey) (*Key, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, ErrInvalidKey
	}
	A, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil, ErrInvalidKey
	}
	return &Key{pub: append(ed25519.PublicKey(nil), pub...), negA: new(edwards25519.Point).Negate(A)}, nil
}

// Precompute builds the key's table (about 284 KiB), after which Verify
// takes the fast path. Calling it again does nothing.
func (k *Key) Precompute() {
	if k.tbl.Load() == nil {
		k.tbl.Store(newTable(k.negA, keyWindow))
	}
}

// Drop releases the key's table.
func (k *Key) Drop() { k.tbl.Store(nil) }

// Precomputed reports whether the key has its table.
func (k *Key) Precomputed() bool { return k.tbl.Load() != nil }

// Verify reports whether sig is a valid signature of msg by the key, with
// crypto/ed25519's rule.
func (k *Key) Verify(msg, sig []byte) bool {
	var c check
	switch k.start(&c, msg, sig) {
	case done:
		return c.ok
	case tabled:
		var R [32]byte
		c.acc.encode(&R)
		return R == [32]byte(sig[:32])
	}
	return false
}

// check is one verification in progress.
type check struct {
	acc extended // [S]B − [k]A, when the table path computed it
	ok  bool     // the verdict, when start returned done
}

type progress int

const (
	done   progress = iota // c.ok holds the verdict
	tabled                 // c.acc holds [S]B − [k]A: compare its encoding with R
)

// start checks S and computes [S]B − [k]A: through the tables (leaving
// the encoding to the caller) or, without a table, to the verdict.
func (k *Key) start(c *check, msg, sig []byte) progress {
	c.ok = false
	if len(sig) != ed25519.SignatureSize || sig[63]&224 != 0 {
		return done
	}
	S, err := edwards25519.NewScalar().SetCanonicalBytes(sig[32:])
	if err != nil {
		return done
	}
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(k.pub)
	h.Write(msg)
	var digest [64]byte
	kh, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(digest[:0]))
	if err != nil {
		return done
	}
	if t := k.tbl.Load(); t != nil {
		c.acc.identity()
		sb, kb := [32]byte(S.Bytes()), [32]byte(kh.Bytes())
		base().addMul(&c.acc, &sb)
		t.addMul(&c.acc, &kb)
		return tabled
	}
	R := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(kh, k.negA, S).Bytes()
	c.ok = [32]byte(R) == [32]byte(sig[:32])
	return done
}

// VerifyMany sets ok[i] to whether sigs[i] is a valid signature of msgs[i]
// by keys[i], with crypto/ed25519's rule: the same verdicts as Verify, but
// the results of the table path are encoded with one field inversion for
// all of them (Montgomery's trick) instead of one each, about a quarter of
// a check.
func VerifyMany(keys []*Key, msgs, sigs [][]byte, ok []bool) {
	checks := make([]check, len(keys))
	zs := make([]field.Element, 0, len(keys))
	idx := make([]int, 0, len(keys))
	for i, k := range keys {
		if k.start(&checks[i], msgs[i], sigs[i]) == tabled {
			idx = append(idx, i)
			zs = append(zs, checks[i].acc.Z)
		} else {
			ok[i] = checks[i].ok
		}
	}
	if len(idx) == 0 {
		return
	}
	// prefix[j] = z_0 · … · z_(j−1); one inversion of the product, then
	// each inverse peeled off from the end.
	prefix := make([]field.Element, len(zs))
	var acc field.Element
	acc.One()
	for j := range zs {
		prefix[j] = acc
		acc.Multiply(&acc, &zs[j])
	}
	var inv field.Element
	inv.Invert(&acc)
	for j := len(zs) - 1; j >= 0; j-- {
		var zinv field.Element
		zinv.Multiply(&inv, &prefix[j])
		inv.Multiply(&inv, &zs[j])
		i := idx[j]
		var R [32]byte
		checks[i].acc.encodeWith(&zinv, &R)
		ok[i] = R == [32]byte(sigs[i][:32])
	}
}
