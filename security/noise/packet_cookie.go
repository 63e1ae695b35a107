package noise

import (
	"encoding/binary"
	"fmt"

	"github.com/ipv8/go-ipv8/transport"
)

// Replies to an initiation that carry no session (packet type 0x06); byte 1
// tells which.
const (
	replyCookie  = 0 // CookieReply
	replyRefusal = 1 // Refusal
)

// CookieReply is the responder's stateless answer to an initiation under
// load (packet type 0x06, always 64 bytes):
//
//	0       type (transport.TypeNoiseCookie)
//	1       0 (a cookie reply)
//	2..3    reserved, zero
//	4..7    receiver index (big endian): the initiation's sender index
//	8..31   nonce (24 random bytes)
//	32..63  the 16-byte cookie sealed with XChaCha20-Poly1305
//	        (key: BLAKE2s("cookie--" ‖ responder key), additional data: the initiation's mac1)
type CookieReply struct {
	ReceiverIndex uint32
	Nonce         [24]byte
	Sealed        [cookieLen + tagLen]byte
}

// ParseCookieReply reads a cookie reply.
func ParseCookieReply(b []byte) (CookieReply, error) {
	var m CookieReply
	if len(b) != cookieReplyLen || b[0] != transport.TypeNoiseCookie || b[1] != replyCookie {
		return m, fmt.Errorf("%w: not a cookie reply (%d bytes)", ErrMalformed, len(b))
	}
	if b[2]|b[3] != 0 {
		return m, fmt.Errorf("%w: cookie reply reserved bytes set", ErrMalformed)
	}
	m.ReceiverIndex = binary.BigEndian.Uint32(b[4:8])
	copy(m.Nonce[:], b[8:32])
	copy(m.Sealed[:], b[32:64])
	return m, nil
}

// Append appends the packet to b.
func (m *CookieReply) Append(b []byte) []byte {
	b = append(b, transport.TypeNoiseCookie, replyCookie, 0, 0)
	b = binary.BigEndian.AppendUint32(b, m.ReceiverIndex)
	b = append(b, m.Nonce[:]...)
	return append(b, m.Sealed[:]...)
}

// Refusal tells an IK initiator that the responder holds none of the static
// keys the initiation was made for: the peer dialled is not at this address
// (packet type 0x06, 24 bytes). The initiator accepts it only if it echoes
// the mac1 it sent (so only someone who saw the initiation can send it) and
// does not trust it further: it falls back to XX, which authenticates who
// is there, and fails the dial with security.ErrWrongPeer if that is not
// the peer dialled.
//
//	0       type (transport.TypeNoiseCookie)
//	1       1 (a refusal)
//	2..3    reserved, zero
//	4..7    receiver index (big endian): the initiation's sender index
//	8..23   the initiation's mac1
type Refusal struct {
	ReceiverIndex uint32
	MAC1          [macLen]byte
}

const refusalLen = 24

// ParseRefusal reads a refusal.
func ParseRefusal(b []byte) (Refusal, error) {
	var m Refusal
	if len(b) != refusalLen || b[0] != transport.TypeNoiseCookie || b[1] != replyRefusal {
		return m, fmt.Errorf("%w: not a refusal (%d bytes)", ErrMalformed, len(b))
	}
	if b[2]|b[3] != 0 {
		return m, fmt.Errorf("%w: refusal reserved bytes set", ErrMalformed)
	}
	m.ReceiverIndex = binary.BigEndian.Uint32(b[4:8])
	copy(m.MAC1[:], b[8:24])
	return m, nil
}

// Append appends the packet to b.
func (m *Refusal) Append(b []byte) []byte {
	b = append(b, transport.TypeNoiseCookie, replyRefusal, 0, 0)
	b = binary.BigEndian.AppendUint32(b, m.ReceiverIndex)
	return append(b, m.MAC1[:]...)
}
