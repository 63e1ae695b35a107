package noise

import (
	"math"
	"time"
)

// Sizes on the wire (docs/protocol/noise.md).
const (
	keyLen    = 32 // X25519 keys, ChaCha20-Poly1305 keys
	tagLen    = 16 // Poly1305
	macLen    = 16 // mac1, mac2 (keyed BLAKE2s-128)
	cookieLen = 16

	// DataHeaderLen is the header of a transport data packet: type, kind,
	// two reserved bytes, receiver index, counter.
	DataHeaderLen = 16
	// DataOverhead is what a transport data packet adds to a payload.
	DataOverhead = DataHeaderLen + tagLen

	initiationHeaderLen = 6  // type, pattern, sender index
	responseHeaderLen   = 10 // type, step, sender index, receiver index
	cookieReplyLen      = 64 // type, 3 reserved, receiver index, 24-byte nonce, sealed cookie

	// minXXInitiation is the size an XX first message is padded to, so that
	// the responder's second message (up to ~215 bytes with a signed
	// identity) stays under three times what it received.
	minXXInitiation = 148
)

// Defaults of Config (each applies only when the field is zero).
const (
	DefaultMaxPacketSize       = 1452 // UDP payload of a 1500-byte IPv6 frame
	DefaultHandshakeTimeout    = 10 * time.Second
	DefaultRetransmitInitial   = 500 * time.Millisecond
	DefaultRetransmitMax       = 4 * time.Second
	DefaultRekeyAfterTime      = 120 * time.Second
	DefaultRejectAfterTime     = 180 * time.Second
	DefaultKeepPreviousKeys    = 15 * time.Second
	DefaultCookieThreshold     = 1000 // handshake messages per second
	DefaultMaxHalfOpen         = 1024
	DefaultAcceptBacklog       = 128
	DefaultEarlyDataMaxAge     = 30 * time.Second
	DefaultStaticCacheSize     = 4096
	DefaultTicketLifetime      = time.Hour
	DefaultTicketCacheSize     = 4096
	DefaultReplayCacheSize     = 8192
	DefaultPendingQueueLimit   = 64
	DefaultRekeyAfterMessages  = uint64(1) << 60
	DefaultRejectAfterMessages = math.MaxUint64 - (1 << 13)

	// cookieSecretLifetime is how long a cookie secret is current; a cookie
	// is accepted under the current and the previous secret.
	cookieSecretLifetime = 2 * time.Minute
	// cookieLifetime is how long an initiator uses a cookie it was given.
	cookieLifetime = cookieSecretLifetime - 5*time.Second
	// loadWindow is the interval over which handshake load is counted.
	loadWindow = time.Second
	// amplificationFactor bounds what is sent to an address not yet
	// validated: at most this many times the bytes received from it.
	amplificationFactor = 3
	// maxBufferedBeforeReceiver bounds payloads kept for a session whose
	// receiver is not set yet (0-RTT data).
	maxBufferedBeforeReceiver = 64
)

// Protocol labels.
const (
	prologue      = "go-ipv8/noise/1"
	labelMAC1     = "mac1----"
	labelCookie   = "cookie--"
	labelXX       = "go-ipv8/noise/XX responder" // stands in for the static key XX initiators do not know
	sigContext    = "go-ipv8/noise/static-key:"
	maxEarlyData  = 1 << 16 // Noise's own message limit bounds it too
	timestampSize = 8
)
