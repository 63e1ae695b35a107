package reliable

import (
	"log/slog"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

// Config tunes a Muxer. The zero value works: every field left zero takes
// the default named in its comment.
type Config struct {
	// LocalAddr is what Conns report as LocalMultiaddr (the port's address
	// with the /ipv8 suffix).
	LocalAddr ma.Multiaddr
	// Congestion selects the congestion controller (default CUBIC).
	Congestion CongestionAlgorithm
	// MaxPacketSize caps the size of a mux packet (default: the session's
	// MaxPayload, at most 65 000).
	MaxPacketSize int
	// MaxIncomingStreams is how many streams the remote may have open at
	// once (default 1024).
	MaxIncomingStreams int
	// MaxStreamWindow and MaxConnWindow cap the receive windows that
	// auto-tuning grows with the measured bandwidth-delay product (defaults
	// 64 MiB and 96 MiB).
	MaxStreamWindow, MaxConnWindow uint64
	// StreamSendBuffer is how much written data a stream buffers before
	// Write blocks, at least twice the congestion window (default 1 MiB).
	StreamSendBuffer int
	// IdleTimeout closes a Conn that heard nothing for this long (default 45 s).
	IdleTimeout time.Duration
	// KeepAlive sends a PING after this long without sending (default 15 s;
	// negative disables).
	KeepAlive time.Duration
	// MaxDatagramQueue bounds datagrams queued in each direction (default 128).
	MaxDatagramQueue int
	// Logger for connection events (default slog.Default()).
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Congestion == "" {
		c.Congestion = CUBIC
	}
	if c.MaxPacketSize <= 0 || c.MaxPacketSize > 65000 {
		c.MaxPacketSize = 65000
	}
	if c.MaxIncomingStreams <= 0 {
		c.MaxIncomingStreams = 1024
	}
	if c.MaxStreamWindow == 0 {
		c.MaxStreamWindow = 64 << 20
	}
	if c.MaxConnWindow == 0 {
		c.MaxConnWindow = 96 << 20
	}
	c.MaxStreamWindow = max(c.MaxStreamWindow, initialStreamWindow)
	c.MaxConnWindow = max(c.MaxConnWindow, initialConnWindow, c.MaxStreamWindow)
	if c.StreamSendBuffer <= 0 {
		c.StreamSendBuffer = 1 << 20
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 45 * time.Second
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 15 * time.Second
	}
	if c.MaxDatagramQueue <= 0 {
		c.MaxDatagramQueue = 128
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Protocol constants both sides assume without negotiation
// (docs/protocol/mux.md §Initial values). Larger limits are announced with
// MAX_* frames in the first packet, so a connection needs no handshake of
// its own beyond the session's.
const (
	initialStreamWindow = 512 << 10
	initialConnWindow   = 1 << 20
	initialMaxStreams   = 128
	defaultAckThreshold = 2
	defaultMaxAckDelay  = 10 * time.Millisecond
	minPacketSize       = 256
	// firstPacketBuf is the size the event loop's packet buffers start at:
	// a UDP payload in a 1500-byte IPv6 frame, the most a session over the
	// Internet's MTU carries.
	firstPacketBuf = 1452
)
