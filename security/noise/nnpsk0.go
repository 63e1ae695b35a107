package noise

import (
	"errors"

	"golang.org/x/crypto/blake2s"
)

// Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s for resumptions, written out
// rather than run through flynn/noise: the pattern is two short messages,
// and the symmetric state below keeps its chaining key and hash in arrays
// and computes HMAC-BLAKE2s with blake2s.Sum256 on stack buffers, so a
// resumption allocates almost nothing beyond its keys (flynn/noise makes a
// new HMAC and two BLAKE2s states for every HKDF). It follows the Noise
// specification (revision 34) step by step; TestNNpsk0MatchesFlynn checks
// every byte and key against flynn/noise in both roles.
//
//	NNpsk0:
//	  -> psk, e
//	  <- e, ee

// errResumeMessage is a resumption message that does not authenticate.
var errResumeMessage = errors.New("noise: resumption message failed")

const nnpsk0Name = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s"

// symState is Noise's SymmetricState (with its CipherState's k and n).
type symState struct {
	ck, h, k [32]byte
	n        uint64
}

// nnpsk0Start is the state after InitializeSymmetric and the prologue,
// the same for every resumption.
var nnpsk0Start = func() symState {
	var s symState
	s.h = blake2s.Sum256([]byte(nnpsk0Name)) // longer than HASHLEN: hashed
	s.ck = s.h
	s.mixHash([]byte(prologue))
	return s
}()

// mixHash sets h = HASH(h ‖ data).
func (s *symState) mixHash(data []byte) {
	if len(data) <= 224 {
		var buf [256]byte
		n := copy(buf[:], s.h[:])
		n += copy(buf[n:], data)
		s.h = blake2s.Sum256(buf[:n])
		clear(buf[:n])
		return
	}
	d, _ := blake2s.New256(nil)
	d.Write(s.h[:])
	d.Write(data)
	d.Sum(s.h[:0])
}

// hmacBLAKE2s is HMAC (RFC 2104) over BLAKE2s-256 with a 32-byte key, for
// inputs of at most 64 bytes.
func hmacBLAKE2s(key *[32]byte, parts ...[]byte) [32]byte {
	var in [64 + 96]byte
	for i := 0; i < 64; i++ {
		in[i] = 0x36
	}
	for i, b := range key {
		in[i] ^= b
	}
	n := 64
	for _, p := range parts {
		n += copy(in[n:], p)
	}
	inner := blake2s.Sum256(in[:n])
	var out [64 + 32]byte
	for i := 0; i < 64; i++ {
		out[i] = 0x5c
	}
	for i, b := range key {
		out[i] ^= b
	}
	copy(out[64:], inner[:])
	sum := blake2s.Sum256(out[:])
	clear(in[:n])
	clear(out[:])
	clear(inner[:])
	return sum
}

// hkdf is Noise's HKDF with two or three outputs (third may be nil).
func hkdf(ck *[32]byte, ikm []byte, o1, o2, o3 *[32]byte) {
	tk := hmacBLAKE2s(ck, ikm)
	*o1 = hmacBLAKE2s(&tk, []byte{1})
	*o2 = hmacBLAKE2s(&tk, o1[:], []byte{2})
	if o3 != nil {
		*o3 = hmacBLAKE2s(&tk, o2[:], []byte{3})
	}
	clear(tk[:])
}

func (s *symState) mixKey(ikm []byte) {
	hkdf(&s.ck, ikm, &s.ck, &s.k, nil)
	s.n = 0
}

func (s *symState) mixKeyAndHash(ikm []byte) {
	var th [32]byte
	hkdf(&s.ck, ikm, &s.ck, &th, &s.k)
	s.mixHash(th[:])
	clear(th[:])
	s.n = 0
}

// encryptAndHash appends the payload sealed under k (a new cipher, which it
// returns) to dst.
func (s *symState) encryptAndHash(dst, plaintext []byte) ([]byte, *aeadCipher) {
	c := newAEADCipher(s.k[:])
	start := len(dst)
	dst = c.Encrypt(dst, s.n, s.h[:], plaintext)
	s.n++
	s.mixHash(dst[start:])
	return dst, c
}

func (s *symState) decryptAndHash(ciphertext []byte) ([]byte, *aeadCipher, error) {
	c := newAEADCipher(s.k[:])
	pt, err := c.Decrypt(nil, s.n, s.h[:], ciphertext)
	if err != nil {
		c.wipe()
		return nil, nil, errResumeMessage
	}
	s.n++
	s.mixHash(ciphertext)
	return pt, c, nil
}

// split returns the transport ciphers: initiator to responder, and back.
func (s *symState) split() (*aeadCipher, *aeadCipher) {
	var k1, k2 [32]byte
	hkdf(&s.ck, nil, &k1, &k2, nil)
	c1, c2 := newAEADCipher(k1[:]), newAEADCipher(k2[:])
	clear(k1[:])
	clear(k2[:])
	return c1, c2
}

func (s *symState) wipe() { *s = symState{} }

// resumeWrite1 makes message 1 (psk, e, payload). It returns the state to
// read message 2 with and the cipher that sealed the payload (0-RTT keys
// derive from it; the caller owns it).
func resumeWrite1(psk *[32]byte, e *dhKeypair, payload []byte) (symState, []byte, *aeadCipher) {
	s := nnpsk0Start
	s.mixKeyAndHash(psk[:])
	msg := make([]byte, 0, keyLen+len(payload)+tagLen)
	msg = append(msg, e.public[:]...)
	s.mixHash(e.public[:])
	s.mixKey(e.public[:]) // the psk modifier: e also feeds the key
	msg, c := s.encryptAndHash(msg, payload)
	return s, msg, c
}

// resumeRead1 reads message 1 as the responder: the initiator's ephemeral
// key, the payload, and the cipher that sealed it.
func resumeRead1(psk *[32]byte, msg []byte) (symState, [32]byte, []byte, *aeadCipher, error) {
	var re [32]byte
	if len(msg) < keyLen+tagLen {
		return symState{}, re, nil, nil, errResumeMessage
	}
	s := nnpsk0Start
	s.mixKeyAndHash(psk[:])
	copy(re[:], msg[:keyLen])
	s.mixHash(re[:])
	s.mixKey(re[:])
	pt, c, err := s.decryptAndHash(msg[keyLen:])
	if err != nil {
		s.wipe()
		return symState{}, re, nil, nil, err
	}
	return s, re, pt, c, nil
}

// resumeWrite2 makes message 2 (e, ee, payload) as the responder and
// returns the transport ciphers (initiator to responder, and back).
func resumeWrite2(s *symState, e *dhKeypair, re *[32]byte, payload []byte) ([]byte, *aeadCipher, *aeadCipher, error) {
	msg := make([]byte, 0, keyLen+len(payload)+tagLen)
	msg = append(msg, e.public[:]...)
	s.mixHash(e.public[:])
	s.mixKey(e.public[:])
	var dh [32]byte
	if err := x25519(&dh, e.private[:], re[:]); err != nil {
		return nil, nil, nil, err
	}
	s.mixKey(dh[:])
	clear(dh[:])
	msg, c := s.encryptAndHash(msg, payload)
	c.wipe()
	c1, c2 := s.split()
	s.wipe()
	return msg, c1, c2, nil
}

// resumeRead2 reads message 2 as the initiator on a copy of the state
// (a forged message leaves s as it was) and returns the payload and the
// transport ciphers.
func resumeRead2(s *symState, e *dhKeypair, msg []byte) ([]byte, *aeadCipher, *aeadCipher, error) {
	if len(msg) < keyLen+tagLen {
		return nil, nil, nil, errResumeMessage
	}
	st := *s
	defer st.wipe()
	var re [32]byte
	copy(re[:], msg[:keyLen])
	st.mixHash(re[:])
	st.mixKey(re[:])
	var dh [32]byte
	if err := x25519(&dh, e.private[:], re[:]); err != nil {
		return nil, nil, nil, errResumeMessage
	}
	st.mixKey(dh[:])
	clear(dh[:])
	pt, c, err := st.decryptAndHash(msg[keyLen:])
	if err != nil {
		return nil, nil, nil, err
	}
	c.wipe()
	c1, c2 := st.split()
	s.wipe()
	return pt, c1, c2, nil
}
