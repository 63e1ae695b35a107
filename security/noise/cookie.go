package noise

import (
	"crypto/subtle"
	"encoding/binary"
	"io"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
)

// The defence against handshake floods follows WireGuard's cookie reply
// (and plays the role of QUIC's Retry):
//
//   - mac1, keyed with the responder's static key (or, for XX, a public
//     label), lets a responder drop junk before any Diffie-Hellman.
//   - Under load, an initiation is processed only if its mac2 is keyed with
//     a valid cookie: a MAC of the source address under a secret that
//     rotates every two minutes. Otherwise the responder answers with a
//     64-byte cookie reply and keeps nothing at all: the cookie is
//     recomputed, not stored. An initiator that receives it proves that it
//     receives at its address by echoing the cookie in mac2.
//   - The reply is sealed with the initiation's mac1 as additional data, so
//     that only someone who saw the initiation can make the initiator use a
//     cookie, and with a key derived from the responder's static key, so
//     that a bystander who does not know whom the initiator dialled cannot
//     read it.

// keyedMAC is BLAKE2s-128 keyed with key over b.
func keyedMAC(key []byte, b []byte) [macLen]byte {
	h, err := blake2s.New128(key)
	if err != nil {
		panic("noise: blake2s: " + err.Error())
	}
	h.Write(b)
	var out [macLen]byte
	h.Sum(out[:0])
	return out
}

// labelKey is BLAKE2s-256(label ‖ pub), the key of mac1 or of cookie
// replies for a responder key.
func labelKey(label string, pub []byte) [32]byte {
	h, _ := blake2s.New256(nil)
	h.Write([]byte(label))
	h.Write(pub)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// appendAddr writes an address as 16 bytes of IP and 2 of port.
func appendAddr(b []byte, a netip.AddrPort) []byte {
	ip := a.Addr().As16()
	b = append(b, ip[:]...)
	return binary.BigEndian.AppendUint16(b, a.Port())
}

// checkMAC1 reports whether an initiation's mac1 is keyed with key.
func checkMAC1(pkt []byte, key *[32]byte) bool {
	m := keyedMAC(key[:], pkt[:mac1Offset(pkt)])
	return subtle.ConstantTimeCompare(m[:], pkt[mac1Offset(pkt):mac2Offset(pkt)]) == 1
}

// setMAC1 and setMAC2 fill an initiation's MACs in place.
func setMAC1(pkt []byte, key *[32]byte) {
	m := keyedMAC(key[:], pkt[:mac1Offset(pkt)])
	copy(pkt[mac1Offset(pkt):], m[:])
}

func setMAC2(pkt []byte, cookie *[cookieLen]byte) {
	m := keyedMAC(cookie[:], pkt[:mac2Offset(pkt)])
	copy(pkt[mac2Offset(pkt):], m[:])
}

// cookieJar is the responder's cookie secret and load meter. It holds no
// per-source state.
type cookieJar struct {
	rng       io.Reader
	threshold int // handshakes per window that mean load; < 0: always

	mu          sync.Mutex
	secret      [32]byte
	prev        [32]byte
	rotated     time.Time
	windowStart time.Time
	count, last int // handshake messages in the current and the previous window
}

func newCookieJar(rng io.Reader, threshold int) *cookieJar {
	return &cookieJar{rng: rng, threshold: threshold}
}

// rotateLocked replaces the secret when it is older than its lifetime.
func (j *cookieJar) rotateLocked(now time.Time) {
	if !j.rotated.IsZero() && now.Sub(j.rotated) < cookieSecretLifetime {
		return
	}
	if !j.rotated.IsZero() && now.Sub(j.rotated) < 2*cookieSecretLifetime {
		j.prev = j.secret
	} else {
		_, _ = io.ReadFull(j.rng, j.prev[:]) // both expired: the old ones must not validate
	}
	_, _ = io.ReadFull(j.rng, j.secret[:])
	j.rotated = now
}

// cookieFor is the cookie of a source address under the current secret
// (or the previous one).
func (j *cookieJar) cookieFor(now time.Time, a netip.AddrPort, prev bool) [cookieLen]byte {
	j.mu.Lock()
	j.rotateLocked(now)
	secret := j.secret
	if prev {
		secret = j.prev
	}
	j.mu.Unlock()
	var buf [18]byte
	return keyedMAC(secret[:], appendAddr(buf[:0], a))
}

// validMAC2 reports whether an initiation from a carries a mac2 keyed with
// the address's cookie.
func (j *cookieJar) validMAC2(now time.Time, pkt []byte, a netip.AddrPort) bool {
	for _, prev := range []bool{false, true} {
		c := j.cookieFor(now, a, prev)
		m := keyedMAC(c[:], pkt[:mac2Offset(pkt)])
		if subtle.ConstantTimeCompare(m[:], pkt[mac2Offset(pkt):]) == 1 {
			return true
		}
	}
	return false
}

// reply builds the cookie reply to an initiation from a.
func (j *cookieJar) reply(now time.Time, in *Initiation, a netip.AddrPort, sealKey *[32]byte) ([]byte, error) {
	c := j.cookieFor(now, a, false)
	m := CookieReply{ReceiverIndex: in.SenderIndex}
	if _, err := io.ReadFull(j.rng, m.Nonce[:]); err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(sealKey[:])
	if err != nil {
		return nil, err
	}
	aead.Seal(m.Sealed[:0], m.Nonce[:], c[:], in.MAC1[:])
	return m.Append(make([]byte, 0, cookieReplyLen)), nil
}

// openCookie is the initiator's side: it recovers the cookie from a reply
// to an initiation whose mac1 was mac1.
func openCookie(m *CookieReply, mac1 *[macLen]byte, sealKey *[32]byte) ([cookieLen]byte, bool) {
	var c [cookieLen]byte
	aead, err := chacha20poly1305.NewX(sealKey[:])
	if err != nil {
		return c, false
	}
	if _, err := aead.Open(c[:0], m.Nonce[:], m.Sealed[:], mac1[:]); err != nil {
		return c, false
	}
	return c, true
}

// note counts a handshake message that passed mac1 and reports whether the
// responder is under load: the rate crossed the threshold, or half the
// half-open slots are taken.
func (j *cookieJar) note(now time.Time, halfOpen, maxHalfOpen int) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.advanceLocked(now)
	j.count++
	return j.loadedLocked(halfOpen, maxHalfOpen)
}

// underLoad reports the same without counting (for packets that failed
// mac1, which must not make the responder look busy).
func (j *cookieJar) underLoad(now time.Time, halfOpen, maxHalfOpen int) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.advanceLocked(now)
	return j.loadedLocked(halfOpen, maxHalfOpen)
}

func (j *cookieJar) loadedLocked(halfOpen, maxHalfOpen int) bool {
	if j.threshold < 0 {
		return true
	}
	return j.count > j.threshold || j.last > j.threshold || 2*halfOpen >= maxHalfOpen
}

// advanceLocked starts a new counting window when the current one ended.
func (j *cookieJar) advanceLocked(now time.Time) {
	if d := now.Sub(j.windowStart); d >= loadWindow || d < 0 {
		if d < 2*loadWindow && d >= 0 {
			j.last = j.count
		} else {
			j.last = 0
		}
		j.count = 0
		j.windowStart = now
	}
}
