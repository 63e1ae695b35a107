package community

import (
	"sync/atomic"

	"github.com/oasisprotocol/curve25519-voi/curve/scalar"
	voied "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/ipv8/go-ipv8/discovery/community/internal/fastverify"
	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/peer"
)

// Signatures of packets that arrived together are checked together: voi's
// batch verifier tests n signatures with one multi-scalar multiplication,
// on this machine 11 µs a signature in batches of 64, 9.7 in batches of
// 128 and 8.7 in batches of 256, where one check alone takes 22 µs. A batch
// of 256 takes about 2.3 ms; it only forms when that many packets wait,
// that is when the endpoint is behind anyway.
//
// A batch only says "all good" or "at least one bad"; when it fails, each
// of its signatures is checked alone, so that exactly the bad ones are
// dropped. A failed batch costs its own check on top of the single ones,
// so the batch size adapts: halved after a failure (down to one by one),
// grown by 8 after a success. A stream with a forgery in every 256 packets
// then settles on small batches instead of failing every one. A
// non-canonical S (what random bytes give 15 times in 16) is refused
// before any batch, as crypto/ed25519 refuses it.
//
// Which rule. A single check is crypto/ed25519's (cofactorless: R must be
// the encoding of [S]B − [k]A). A batch can only test the cofactored
// equation [8]([S]B − [k]A − R) = 0 (voi refuses its StdLib options in a
// batch for this reason), which also holds when R differs from [S]B − [k]A
// by a point of order 2, 4 or 8. So that the two rules differ as little as
// possible:
//   - keys that are small-order, non-canonically encoded or carry a torsion
//     component never join a batch (checked once per key);
//   - a non-canonical S or R is refused by the batch as by crypto/ed25519;
//   - keys holding a fastverify table are checked with it (as fast as a
//     batch, and exact), their results encoded with one shared inversion
//     (fastverify.VerifyMany).
// What remains is a signature whose R its signer built as rB + T with T of
// small order: crypto/ed25519 refuses it, a batch accepts it. Only the
// holder of the private key can make one (it proves as much as any valid
// signature about who signed), so no one can forge a message through it;
// such a message would be accepted here and refused by py-ipv8.

// maxBatch is the most signatures checked together.
const maxBatch = 256

// batchOptions: crypto/ed25519's rule but cofactored (see above).
var batchOptions = &voied.Options{Verify: &voied.VerifyOptions{
	AllowSmallOrderA:   true,
	AllowSmallOrderR:   true,
	AllowNonCanonicalA: true,
}}

// sigCheck is one signature to check, and its outcome.
type sigCheck struct {
	s   *wire.Signed
	key *peer.PublicKey // the sender, when the signature verified
	err error           // wraps wire.ErrBadSignature, or the key's parse error

	entry *keyEntry
}

// batchVerifier checks the signatures of a batch of packets. It belongs to
// one goroutine at a time (the endpoint's worker).
type batchVerifier struct {
	bv    *voied.BatchVerifier
	batch []*sigCheck
	// size is the most signatures checked in one batch now (see adapt),
	// so that a stream with forgeries pays for few failed batches.
	size int

	// The checks of keys holding tables, and fastverify.VerifyMany's
	// arguments.
	tabled     []*sigCheck
	fvKeys     []*fastverify.Key
	msgs, sigs [][]byte
	ok         []bool

	batches, batchFailures atomic.Uint64
}

// verify fills in the key or the error of every check.
func (v *batchVerifier) verify(keys *KeyCache, checks []sigCheck) {
	v.batch, v.tabled = v.batch[:0], v.tabled[:0]
	for i := range checks {
		c := &checks[i]
		e, err := keys.entry(c.s.KeyBin)
		if err != nil {
			c.err = err
			continue
		}
		keys.count(e)
		c.entry = e
		if len(c.s.Signature) != voied.SignatureSize || !scalar.ScMinimalVartime(c.s.Signature[32:]) {
			// crypto/ed25519 refuses a non-canonical S too; refused here,
			// it cannot make a batch fail (random bytes are non-canonical
			// 15 times in 16).
			c.err = wire.ErrBadSignature
			continue
		}
		if fv := e.fv.Load(); fv != nil {
			v.tabled = append(v.tabled, c)
			v.fvKeys = append(v.fvKeys, fv)
			continue
		}
		if !e.canBatch() {
			v.one(c)
			continue
		}
		v.batch = append(v.batch, c)
	}
	v.verifyTabled()
	if v.size == 0 {
		v.size = maxBatch
	}
	for b := v.batch; len(b) > 0; {
		n := min(len(b), v.size)
		v.verifyBatch(b[:n])
		b = b[n:]
	}
	clear(v.batch)
}

// verifyBatch checks b as one batch (one by one if it has one entry or
// fails) and adapts the batch size to the outcome.
func (v *batchVerifier) verifyBatch(b []*sigCheck) {
	if len(b) < 2 {
		for _, c := range b {
			v.one(c)
		}
		v.adapt(b[0].err == nil)
		return
	}
	if v.bv == nil {
		v.bv = voied.NewBatchVerifierWithCapacity(maxBatch)
	}
	v.bv.Reset()
	for _, c := range b {
		v.bv.AddExpandedWithOptions(c.entry.vx, c.s.SignedBytes(), c.s.Signature, batchOptions)
	}
	v.batches.Add(1)
	if v.bv.VerifyBatchOnly(nil) {
		for _, c := range b {
			c.key = c.entry.pub
		}
		v.adapt(true)
		return
	}
	v.batchFailures.Add(1)
	v.adapt(false)
	for _, c := range b {
		v.one(c)
	}
}

// adapt grows the batch size after a good batch (8 more, or from one by
// one to 2) and halves it after a bad one. With a forgery every n packets
// the size settles where a batch of s loses about s·22/n µs a signature
// to failures, near its best (batches of 8–32 for n = 256).
func (v *batchVerifier) adapt(good bool) {
	switch {
	case !good:
		v.size = max(v.size/2, 1)
	case v.size < 2:
		v.size = 2
	default:
		v.size = min(v.size+8, maxBatch)
	}
}

// verifyTabled checks the signatures of keys holding tables.
func (v *batchVerifier) verifyTabled() {
	if len(v.tabled) == 0 {
		return
	}
	v.msgs, v.sigs, v.ok = v.msgs[:0], v.sigs[:0], v.ok[:0]
	for _, c := range v.tabled {
		v.msgs = append(v.msgs, c.s.SignedBytes())
		v.sigs = append(v.sigs, c.s.Signature)
		v.ok = append(v.ok, false)
	}
	fastverify.VerifyMany(v.fvKeys, v.msgs, v.sigs, v.ok)
	for i, c := range v.tabled {
		if v.ok[i] {
			c.key = c.entry.pub
		} else {
			c.err = wire.ErrBadSignature
		}
	}
	clear(v.fvKeys)
	clear(v.msgs)
	clear(v.sigs)
	v.fvKeys = v.fvKeys[:0]
}

// one checks c alone, with crypto/ed25519's rule.
func (v *batchVerifier) one(c *sigCheck) {
	if c.entry.verify(c.s) {
		c.key = c.entry.pub
	} else {
		c.err = wire.ErrBadSignature
	}
}
