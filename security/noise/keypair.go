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
	initiator   bool   // we initiated the handshake that made it
	created     time.Time
	sess        *session

	// mu guards the keys against being wiped while a packet is sealed or
	// opened with them: Seal and Open hold it shared, wipe exclusively.
	mu    sync.RWMutex
	send  *aeadCipher
	recv  *aeadCipher
	wiped bool

	sendCounter atomic.Uint64 // the next counter to send
	rekeyDue    atomic.Bool   // set by the session's timer: Send starts a rekey
	replay      replayWindow
	inbound     *inbound // the responder's handshake that made it, until confirmed
}

// seal appends the sealed packet (header + ciphertext) for payload to dst;
// nonce is scratch space the caller owns (so that nothing escapes per packet).
func (kp *keypair) seal(dst []byte, nonce *[12]byte, kind Kind, counter uint64, payload []byte) ([]byte, bool) {
	h := DataHeader{Kind: kind, ReceiverIndex: kp.remoteIndex, Counter: counter}
	start := len(dst)
	dst = h.Append(dst)
	putNonce(nonce, counter)
	kp.mu.RLock()
	if kp.wiped {
		kp.mu.RUnlock()
		return dst[:start], false
	}
	dst = kp.send.aead.Seal(dst, nonce[:], payload, dst[start:start+DataHeaderLen])
	kp.mu.RUnlock()
	return dst, true
}

// open authenticates and decrypts a data packet's ciphertext into dst.
func (kp *keypair) open(dst []byte, nonce *[12]byte, header, ciphertext []byte, counter uint64) ([]byte, error) {
	putNonce(nonce, counter)
	kp.mu.RLock()
	defer kp.mu.RUnlock()
	if kp.wiped {
		return nil, errWiped
	}
	return kp.recv.aead.Open(dst, nonce[:], ciphertext, header)
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
