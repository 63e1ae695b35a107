package noise

import (
	"errors"

	"golang.org/x/crypto/blake2s"
)

// Noise_IK_25519_ChaChaPoly_BLAKE2s written out on the symmetric state of
// nnpsk0.go instead of run through flynn/noise, which makes a new HMAC and
// two BLAKE2s states for every HKDF and allocates ≈ 100 objects a
// handshake: IK is the handshake of every dial by peer ID, and its
// messages are on the path of every connection's first round trip. XX
// (dialling an address) stays on flynn/noise. The steps follow the Noise
// specification (revision 34); TestIKMatchesFlynn checks every message
// byte and transport key against flynn/noise in both roles.
//
//	IK:
//	  <- s
//	  ...
//	  -> e, es, s, ss
//	  <- e, ee, se

// errIKMessage is an IK message that does not authenticate (or a peer key
// of small order).
var errIKMessage = errors.New("noise: IK message failed")

const ikName = "Noise_IK_25519_ChaChaPoly_BLAKE2s"

// ikBase is the state after InitializeSymmetric and the prologue; each
// handshake then mixes in the responder's static key (the pre-message).
var ikBase = func() symState {
	var s symState
	s.h = blake2s.Sum256([]byte(ikName)) // longer than HASHLEN: hashed
	s.ck = s.h
	s.mixHash([]byte(prologue))
	return s
}()

// ikMsg1Len is the length of IK message 1 without its payload.
const ikMsg1Len = keyLen + keyLen + tagLen + tagLen

// ssFunc computes the static-static Diffie-Hellman with the peer's static
// key rs (Transport.staticDH: cached per peer).
type ssFunc func(rs []byte) ([32]byte, error)

// ikWrite1 makes message 1 as the initiator with ephemeral key e and
// static key s to the responder's static key rs. It returns the state to
// read message 2 with, the message, and the cipher that sealed the payload
// (0-RTT keys derive from it; the caller owns and wipes it).
func ikWrite1(e, s *dhKeypair, rs *[32]byte, ss ssFunc, payload []byte) (symState, []byte, *aeadCipher, error) {
	st := ikBase
	st.mixHash(rs[:])
	msg := make([]byte, 0, ikMsg1Len+len(payload))
	msg = append(msg, e.public[:]...)
	st.mixHash(e.public[:])
	var dh [32]byte
	if err := x25519(&dh, e.private[:], rs[:]); err != nil {
		st.wipe()
		return symState{}, nil, nil, err
	}
	st.mixKey(dh[:])
	msg, c := st.encryptAndHash(msg, s.public[:])
	c.wipe()
	dh, err := ss(rs[:])
	if err != nil {
		st.wipe()
		return symState{}, nil, nil, err
	}
	st.mixKey(dh[:])
	clear(dh[:])
	msg, c = st.encryptAndHash(msg, payload)
	return st, msg, c, nil
}

// ikRead1 reads message 1 as the responder with static key s. It returns
// the state to write message 2 with, the initiator's ephemeral and static
// keys, the payload and the cipher that opened it (the responder opens
// 0-RTT packets with a key derived from it; the caller owns it). A message
// that fails leaves nothing behind.
func ikRead1(s *dhKeypair, ss ssFunc, msg []byte) (st symState, re, rs [32]byte, payload []byte, c *aeadCipher, err error) {
	if len(msg) < ikMsg1Len {
		return symState{}, re, rs, nil, nil, errIKMessage
	}
	st = ikBase
	st.mixHash(s.public[:])
	copy(re[:], msg[:keyLen])
	st.mixHash(re[:])
	var dh [32]byte
	if err := x25519(&dh, s.private[:], re[:]); err != nil {
		st.wipe()
		return symState{}, re, rs, nil, nil, errIKMessage
	}
	st.mixKey(dh[:])
	clear(dh[:])
	pt, sc, err := st.decryptAndHash(msg[keyLen : 2*keyLen+tagLen])
	if err != nil {
		st.wipe()
		return symState{}, re, rs, nil, nil, errIKMessage
	}
	sc.wipe()
	copy(rs[:], pt)
	if dh, err = ss(rs[:]); err != nil {
		st.wipe()
		return symState{}, re, rs, nil, nil, errIKMessage
	}
	st.mixKey(dh[:])
	clear(dh[:])
	payload, c, err = st.decryptAndHash(msg[2*keyLen+tagLen:])
	if err != nil {
		st.wipe()
		return symState{}, re, rs, nil, nil, errIKMessage
	}
	return st, re, rs, payload, c, nil
}

// ikWrite2 makes message 2 as the responder with ephemeral key e, and
// returns it with the transport ciphers (initiator to responder, and
// back). It wipes st.
func ikWrite2(st *symState, e *dhKeypair, re, rs *[32]byte, payload []byte) ([]byte, *aeadCipher, *aeadCipher, error) {
	defer st.wipe()
	msg := make([]byte, 0, keyLen+len(payload)+tagLen)
	msg = append(msg, e.public[:]...)
	st.mixHash(e.public[:])
	var dh [32]byte
	if err := x25519(&dh, e.private[:], re[:]); err != nil {
		return nil, nil, nil, err
	}
	st.mixKey(dh[:])
	if err := x25519(&dh, e.private[:], rs[:]); err != nil {
		clear(dh[:])
		return nil, nil, nil, err
	}
	st.mixKey(dh[:])
	clear(dh[:])
	msg, c := st.encryptAndHash(msg, payload)
	c.wipe()
	c1, c2 := st.split()
	return msg, c1, c2, nil
}

// ikRead2 reads message 2 as the initiator (ephemeral e, static s) on a
// copy of st, so that a forged message leaves st as it was, and returns
// the payload and the transport ciphers. On success it wipes st.
func ikRead2(st *symState, e, s *dhKeypair, msg []byte) ([]byte, *aeadCipher, *aeadCipher, error) {
	if len(msg) < keyLen+tagLen {
		return nil, nil, nil, errIKMessage
	}
	w := *st
	defer w.wipe()
	var re [32]byte
	copy(re[:], msg[:keyLen])
	w.mixHash(re[:])
	var dh [32]byte
	if err := x25519(&dh, e.private[:], re[:]); err != nil {
		return nil, nil, nil, errIKMessage
	}
	w.mixKey(dh[:])
	if err := x25519(&dh, s.private[:], re[:]); err != nil {
		clear(dh[:])
		return nil, nil, nil, errIKMessage
	}
	w.mixKey(dh[:])
	clear(dh[:])
	pt, c, err := w.decryptAndHash(msg[keyLen:])
	if err != nil {
		return nil, nil, nil, errIKMessage
	}
	c.wipe()
	c1, c2 := w.split()
	st.wipe()
	return pt, c1, c2, nil
}

// staticDH returns the static-static Diffie-Hellman of our static key ls
// with the peer's rs: from the cache for our primary key (as WireGuard,
// the result is the same for every handshake between two peers), computed
// otherwise.
func (t *Transport) staticDH(ls *localStatic) ssFunc {
	return func(rs []byte) ([32]byte, error) {
		cache := t.ssCache
		if ls != t.primary {
			cache = nil
		}
		if cache != nil {
			if v, ok := cache.get(rs); ok {
				return v, nil
			}
		}
		var out [32]byte
		if err := x25519(&out, ls.kp.private[:], rs); err != nil {
			return out, err
		}
		if cache != nil {
			cache.put(rs, out)
		}
		return out, nil
	}
}
