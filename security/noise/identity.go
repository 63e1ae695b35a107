package noise

import (
	"crypto/ed25519"
	"fmt"

	"github.com/ipv8/go-ipv8/peer"
)

// How a handshake binds a Noise static key to a peer.ID (an Ed25519 key);
// docs/protocol/noise.md gives the reasoning.
//
//   - A native identity's X25519 key is derived from its Ed25519 key (the
//     Ed25519 secret scalar is the X25519 secret). The receiver checks the
//     derivation (a few field multiplications), and the Diffie-Hellman
//     operations of the handshake prove possession of the static key, hence
//     of the Ed25519 secret: no signature is sent or checked.
//   - An identity imported from py-ipv8 has an independent X25519 key. It
//     sends a signature of sigContext ‖ X25519 key by its Ed25519 key,
//     made once when the Transport starts.

// localStatic is one of our Noise static keys with what is sent to bind it.
type localStatic struct {
	kp      dhKeypair
	mac1Key [32]byte // peers' initiations to this key carry mac1 under it
	sealKey [32]byte // our cookie replies for initiations to this key are sealed under it
	native  bool     // derived from our Ed25519 key
}

func newLocalStatic(priv []byte, native bool) *localStatic {
	ls := &localStatic{native: native}
	copy(ls.kp.private[:], priv)
	x25519Base(&ls.kp.public, ls.kp.private[:])
	ls.mac1Key = labelKey(labelMAC1, ls.kp.public[:])
	ls.sealKey = labelKey(labelCookie, ls.kp.public[:])
	return ls
}

// staticSignature signs a static key for sending in a hello.
func staticSignature(key *peer.PrivateKey, x []byte) []byte {
	msg := make([]byte, 0, len(sigContext)+keyLen)
	msg = append(append(msg, sigContext...), x...)
	return key.Sign(msg)
}

// verifyIdentity checks that the remote's Noise static key rs is bound to
// the Ed25519 key ed, with the optional identity X25519 key x (when it is
// not rs) and signature sig, and returns the remote's public identity.
func verifyIdentity(ed, rs, x, sig []byte) (*peer.PublicKey, error) {
	if len(ed) != ed25519.PublicKeySize || len(rs) != keyLen {
		return nil, fmt.Errorf("%w: no Ed25519 key", ErrNoIdentity)
	}
	if x != nil && string(x) == string(rs) {
		x = nil
	}
	idX := rs
	if x != nil {
		idX = x
	}
	signed := func() bool {
		if len(sig) != peer.SignatureSize {
			return false
		}
		msg := make([]byte, 0, len(sigContext)+keyLen)
		msg = append(append(msg, sigContext...), idX...)
		return ed25519.Verify(ed, msg, sig)
	}
	switch {
	case nativeStaticMatches(ed, rs):
		// rs is bound by derivation; an identity X25519 key besides it
		// must be signed.
		if x != nil && !signed() {
			return nil, fmt.Errorf("%w: identity X25519 key not signed", ErrNoIdentity)
		}
	case x != nil:
		return nil, fmt.Errorf("%w: static key is neither derived from the identity nor the identity's key", ErrNoIdentity)
	case !signed():
		return nil, fmt.Errorf("%w: static key not derived from the identity and not signed by it", ErrNoIdentity)
	}
	enc := make([]byte, 0, peer.LibNaCLPKSize)
	enc = append(enc, "LibNaCLPK:"...)
	enc = append(append(enc, idX...), ed...)
	pub, err := peer.ParseLibNaCLPK(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoIdentity, err)
	}
	return pub, nil
}
