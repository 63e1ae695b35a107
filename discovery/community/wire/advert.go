package wire

import "fmt"

// go-ipv8 advertises what it speaks besides the community protocol in the
// extra bytes of its introduction requests and responses, a field py-ipv8
// carries but does not read. The advertisement is a trailer, so that an
// application that needs the extra bytes for itself (as some py-ipv8
// communities do) keeps them in front:
//
//	[application extra …][body …][body length: 1][version: 1]['g' '8']
//
// Version 1 has a 1-byte body of capability flags. A reader that finds no
// trailer (py-ipv8 peers, or another version) treats all bytes as the
// application's. Receivers ignore flag bits they do not know.

// Capability flags of the Advert.
const (
	// CapNoise: the peer accepts go-ipv8 Noise sessions (security/noise)
	// on the address the packet came from. Its Noise static key is the
	// X25519 half of the LibNaCLPK key that signed the packet, and its
	// peer.ID is derived from the Ed25519 half.
	CapNoise = 0x01
	// CapQUIC: the peer accepts QUIC (TLS bound to its identity) on the
	// same address.
	CapQUIC = 0x02
)

const (
	advertMagic0  = 'g'
	advertMagic1  = '8'
	advertVersion = 1
	advertTrailer = 4 // length, version, magic
)

// Advert is go-ipv8's capability advertisement.
type Advert struct {
	Flags byte
}

// Noise reports CapNoise.
func (a Advert) Noise() bool { return a.Flags&CapNoise != 0 }

// AppendAdvert appends the advertisement trailer to extra.
func AppendAdvert(extra []byte, a Advert) []byte {
	return append(extra, a.Flags, 1, advertVersion, advertMagic0, advertMagic1)
}

// SplitAdvert finds an advertisement trailer at the end of extra. It returns
// the application's part of extra and the advertisement; ok is false (and
// app is all of extra) when there is none.
func SplitAdvert(extra []byte) (app []byte, a Advert, ok bool) {
	n := len(extra)
	if n < advertTrailer || extra[n-1] != advertMagic1 || extra[n-2] != advertMagic0 || extra[n-3] != advertVersion {
		return extra, Advert{}, false
	}
	body := int(extra[n-4])
	if body < 1 || body > n-advertTrailer {
		return extra, Advert{}, false
	}
	start := n - advertTrailer - body
	return extra[:start:start], Advert{Flags: extra[start]}, true
}

// String describes the capabilities.
func (a Advert) String() string {
	return fmt.Sprintf("noise=%t quic=%t", a.Flags&CapNoise != 0, a.Flags&CapQUIC != 0)
}
