package noise

import (
	"sync"
	"sync/atomic"
	"time"
)

// keypair is one direction pair of transport keys from one handshake: it
// seals what we send (to the peer's index) and opens what arrives at our
// index. A session holds up to three: current, previous (still opening
// packets in flight), and next (a responder's keys not yet confirmed by a
// packet from the initiator).
type keypair struct {
	localIndex  uint32 // receivers address packets to us with it
	remoteIndex uint32 // we address packets with it
	created     time.Time
	sess        *session

	// mu guards the keys against being wiped while a packet is sealed or
	// opened with them: Seal and Open hold it shared, wipe exclusively.
	mu   sync.RWMutex
	send *aeadCipher
	recv *aeadCipher

	sendCounter atomic.Uint64 // the next counter to send
	replay      replayWindow
	inbound     *inbound // the responder's handshake that made it, until confirmed

	// The flags last, together, so that a keypair fits 384 bytes: every
	// session holds one for as long as it lives.
	initiator bool        // we initiated the handshake that made it
	wiped     bool        // under mu
	rekeyDue  atomic.Bool // set by the session's timer: Send starts a rekey
	peerAES   atomic.Bool // the peer opens AES-GCM under these keys (an authenticated packet said so)
}

// seal appends the sealed packet (header + ciphertext) for payload to dst;
// nonce is scratch space the caller owns (so that nothing escapes per packet).
// aes says that this end opens AES-GCM (Transport.aesOK).
func (kp *keypair) seal(dst []byte, nonce *[12]byte, kind Kind, counter uint64, payload []byte, aes bool) ([]byte, bool) {
	start := len(dst)
	kp.mu.RLock()
	if kp.wiped {
		kp.mu.RUnlock()
		return dst[:start], false
	}
	dst = kp.sealLocked(dst, nonce, kind, counter, payload, aes)
	kp.mu.RUnlock()
	return dst, true
}

// sealRun seals payloads as data packets with counters from ctr on,
// appending them back to back to dst and their slices to pkts. It returns
// the extended dst and how many it sealed (none when the keys were wiped).
// The lock is taken once for the run.
func (kp *keypair) sealRun(dst []byte, nonce *[12]byte, pkts *[][]byte, ctr uint64, payloads [][]byte, aes bool) ([]byte, int) {
	kp.mu.RLock()
	defer kp.mu.RUnlock()
	if kp.wiped {
		return dst, 0
	}
	for i, b := range payloads {
		start := len(dst)
		dst = kp.sealLocked(dst, nonce, KindData, ctr+uint64(i), b, aes)
		*pkts = append(*pkts, dst[start:len(dst):len(dst)])
	}
	return dst, len(payloads)
}

// sealLocked seals one packet; kp.mu is held (shared) and kp not wiped.
// It seals with AES-256-GCM when both ends open it and the keypair is past
// its first aesAfterPackets packets and within the AES-GCM limit.
func (kp *keypair) sealLocked(dst []byte, nonce *[12]byte, kind Kind, counter uint64, payload []byte, aes bool) []byte {
	h := DataHeader{Kind: kind, ReceiverIndex: kp.remoteIndex, Counter: counter}
	useAES := false
	if aes {
		h.Flags = FlagOpensAESGCM
		if kp.peerAES.Load() && counter >= aesAfterPackets && counter < aesMaxPackets {
			h.Flags |= FlagAESGCM
			useAES = true
			if counter >= aesRekeyAfter && !kp.rekeyDue.Load() {
				kp.rekeyDue.Store(true)
			}
		}
	}
	start := len(dst)
	dst = h.Append(dst)
	putNonce(nonce, counter)
	ad := dst[start : start+DataHeaderLen]
	if useAES {
		return kp.send.aesGCM().Seal(dst, nonce[:], payload, ad)
	}
	return kp.send.aead.Seal(dst, nonce[:], payload, ad)
}

// open authenticates and decrypts a data packet's ciphertext into dst,
// with the AEAD its flags name. An AES-GCM packet is refused unless this
// end opens AES-GCM (aes), as it then never said it does.
func (kp *keypair) open(dst []byte, nonce *[12]byte, h *DataHeader, header, ciphertext []byte, aes bool) ([]byte, error) {
	putNonce(nonce, h.Counter)
	kp.mu.RLock()
	defer kp.mu.RUnlock()
	if kp.wiped {
		return nil, errWiped
	}
	if h.Flags&FlagAESGCM != 0 {
		if !aes {
			return nil, errAESRefused
		}
		return kp.recv.aesGCM().Open(dst, nonce[:], ciphertext, header)
	}
	return kp.recv.aead.Open(dst, nonce[:], ciphertext, header)
}

// takeInbound returns the responder's handshake that made the keys and
// forgets it: once the keys are confirmed the handshake's state (its
// response, kept for retransmission, and its timer) is garbage, and an
// idle session must not hold it. The caller holds the session's mu.
func (kp *keypair) takeInbound() *inbound {
	ib := kp.inbound
	kp.inbound = nil
	return ib
}

// wipe zeroes both keys. The keypair can no longer seal or open.
func (kp *keypair) wipe() {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	if kp.wiped {
		return
	}
	kp.wiped = true
	kp.send.wipe()
	kp.recv.wipe()
}

func (kp *keypair) isWiped() bool {
	kp.mu.RLock()
	defer kp.mu.RUnlock()
	return kp.wiped
}
