package relay

import (
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"net/netip"
	"sync"
	"time"
)

// cookies are the relay's stateless proof that a client receives at the
// address it sends from (as a TCP SYN cookie or WireGuard's cookie reply):
// an HMAC of the address under a secret that rotates every
// cookieRotation. A cookie made under the current or the previous secret
// is accepted, so it lives between one and two rotations.
type cookies struct {
	rng io.Reader

	mu      sync.Mutex
	cur     [32]byte
	prev    [32]byte
	rotated time.Time
}

const cookieRotation = 2 * time.Minute

func newCookies(rng io.Reader, now time.Time) *cookies {
	c := &cookies{rng: rng, rotated: now}
	io.ReadFull(rng, c.cur[:])
	io.ReadFull(rng, c.prev[:])
	return c
}

func (c *cookies) rotate(now time.Time) {
	for now.Sub(c.rotated) >= cookieRotation {
		c.prev = c.cur
		io.ReadFull(c.rng, c.cur[:])
		c.rotated = c.rotated.Add(cookieRotation)
		if now.Sub(c.rotated) >= cookieRotation { // long idle: both stale
			c.prev = c.cur
			c.rotated = now
		}
	}
}

func mac(secret *[32]byte, a netip.AddrPort) (out [CookieLen]byte) {
	h := hmac.New(sha256.New, secret[:])
	b, _ := a.MarshalBinary()
	h.Write(b)
	copy(out[:], h.Sum(nil))
	return out
}

// make returns the cookie for address a.
func (c *cookies) make(a netip.AddrPort, now time.Time) [CookieLen]byte {
	c.mu.Lock()
	c.rotate(now)
	s := c.cur
	c.mu.Unlock()
	return mac(&s, a)
}

// check reports whether cookie is a's under the current or previous secret.
func (c *cookies) check(a netip.AddrPort, cookie [CookieLen]byte, now time.Time) bool {
	c.mu.Lock()
	c.rotate(now)
	cur, prev := c.cur, c.prev
	c.mu.Unlock()
	m1, m2 := mac(&cur, a), mac(&prev, a)
	return hmac.Equal(m1[:], cookie[:]) || hmac.Equal(m2[:], cookie[:])
}
