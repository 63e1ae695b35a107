package noise

import (
	"io"
	"log/slog"
	"time"

	"github.com/ipv8/go-ipv8/internal/clock"
)

// Config tunes a Transport. The zero value is usable: every zero field takes
// its Default* value.
type Config struct {
	// Clock drives every deadline (clock.Real when nil); internal/netsim
	// passes its virtual clock.
	Clock clock.Clock
	// Logger gets handshake and session events at debug level (slog.Default
	// when nil).
	Logger *slog.Logger
	// Rand is the source of keys, indexes and nonces (crypto/rand when nil).
	Rand io.Reader

	// MaxPacketSize is the largest UDP payload a session sends; a session's
	// MaxPayload is this minus DataOverhead.
	MaxPacketSize int

	// HandshakeTimeout bounds a handshake: Dial gives up after it (when its
	// context has no earlier deadline), and a responder drops state that
	// was not confirmed within it.
	HandshakeTimeout time.Duration
	// RetransmitInitial is the first handshake retransmission timeout; it
	// doubles (with ±10 % jitter) up to RetransmitMax.
	RetransmitInitial time.Duration
	RetransmitMax     time.Duration

	// RekeyAfterTime and RekeyAfterMessages start a new handshake for a
	// session whose sending keys are that old or have sealed that many
	// packets; RejectAfterTime and RejectAfterMessages are hard limits
	// after which the keys are wiped and no longer used.
	RekeyAfterTime      time.Duration
	RejectAfterTime     time.Duration
	RekeyAfterMessages  uint64
	RejectAfterMessages uint64
	// KeepPreviousKeys is how long keys replaced by a rekey still open
	// packets that were in flight; then they are wiped.
	KeepPreviousKeys time.Duration

	// CookieThreshold is the handshake rate (messages per second that
	// passed mac1) above which the responder demands a cookie: it answers
	// initiations without a valid mac2 statelessly with a cookie reply.
	// The responder is also under load when half its MaxHalfOpen slots are
	// taken. A negative value demands cookies always.
	CookieThreshold int
	// MaxHalfOpen bounds inbound handshakes that have state but are not
	// confirmed yet (XX waiting for its third message, IK sessions waiting
	// for the initiator's first packet); beyond it initiations are dropped.
	MaxHalfOpen int
	// AcceptBacklog bounds sessions waiting for Accept; beyond it inbound
	// handshakes are dropped.
	AcceptBacklog int
	// EarlyDataMaxAge bounds how far an IK initiation's timestamp may lie
	// from the responder's clock for the data it carries to be delivered
	// (it is replayable within that window at most, and only if the
	// responder lost the initiator's newer timestamp); otherwise the
	// handshake succeeds and the early data is dropped (the layer above
	// retransmits it).
	EarlyDataMaxAge time.Duration
	// StaticCacheSize bounds the cache of static-static DH results
	// (negative disables it).
	StaticCacheSize int
	// TicketLifetime is how long a resumption ticket (left by a handshake
	// with a peer, for the next dial to it) may be used; TicketCacheSize
	// bounds the tickets kept (one per peer). A negative value of either
	// disables resumption.
	TicketLifetime  time.Duration
	TicketCacheSize int
	// ReplayCacheSize bounds the newest initiation timestamp kept per peer.
	ReplayCacheSize int
	// PendingQueueLimit bounds payloads a session holds while it cannot
	// send (keys expired and a rekey is running, or a new address is being
	// validated); beyond it Send drops them (counted).
	PendingQueueLimit int

	// DisableAESGCM keeps every transport packet on ChaCha20-Poly1305.
	// By default a session seals bulk traffic with AES-256-GCM when both
	// ends have hardware AES and say so (docs/protocol/noise.md, "Data
	// cipher"); ChaCha20-Poly1305 is what either end falls back to.
	DisableAESGCM bool
}

func (c Config) withDefaults() Config {
	if c.Clock == nil {
		c.Clock = clock.Real
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = DefaultMaxPacketSize
	}
	if c.MaxPacketSize < DataOverhead+64 {
		c.MaxPacketSize = DataOverhead + 64
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.RetransmitInitial == 0 {
		c.RetransmitInitial = DefaultRetransmitInitial
	}
	if c.RetransmitMax == 0 {
		c.RetransmitMax = DefaultRetransmitMax
	}
	if c.RekeyAfterTime == 0 {
		c.RekeyAfterTime = DefaultRekeyAfterTime
	}
	if c.RejectAfterTime == 0 {
		c.RejectAfterTime = DefaultRejectAfterTime
	}
	if c.RejectAfterTime < c.RekeyAfterTime {
		c.RejectAfterTime = c.RekeyAfterTime + c.RekeyAfterTime/2
	}
	if c.RekeyAfterMessages == 0 {
		c.RekeyAfterMessages = DefaultRekeyAfterMessages
	}
	if c.RejectAfterMessages == 0 {
		c.RejectAfterMessages = DefaultRejectAfterMessages
	}
	if c.RejectAfterMessages < c.RekeyAfterMessages {
		c.RejectAfterMessages = c.RekeyAfterMessages
	}
	if c.KeepPreviousKeys == 0 {
		c.KeepPreviousKeys = DefaultKeepPreviousKeys
	}
	if c.CookieThreshold == 0 {
		c.CookieThreshold = DefaultCookieThreshold
	}
	if c.MaxHalfOpen == 0 {
		c.MaxHalfOpen = DefaultMaxHalfOpen
	}
	if c.AcceptBacklog == 0 {
		c.AcceptBacklog = DefaultAcceptBacklog
	}
	if c.EarlyDataMaxAge == 0 {
		c.EarlyDataMaxAge = DefaultEarlyDataMaxAge
	}
	if c.StaticCacheSize == 0 {
		c.StaticCacheSize = DefaultStaticCacheSize
	}
	if c.TicketLifetime == 0 {
		c.TicketLifetime = DefaultTicketLifetime
	}
	if c.TicketCacheSize == 0 {
		c.TicketCacheSize = DefaultTicketCacheSize
	}
	if c.ReplayCacheSize <= 0 {
		c.ReplayCacheSize = DefaultReplayCacheSize
	}
	if c.PendingQueueLimit == 0 {
		c.PendingQueueLimit = DefaultPendingQueueLimit
	}
	return c
}
