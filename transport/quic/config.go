package quic

import (
	"log/slog"
	"time"
)

// Config tunes the transport. A zero field takes the default named in its
// comment.
type Config struct {
	// MaxIdleTimeout closes a connection that received nothing for this long
	// (default 30 s; the smaller of both sides' values applies).
	MaxIdleTimeout time.Duration
	// KeepAlivePeriod sends a keep-alive after this much silence, so that
	// NAT mappings and the idle timer survive quiet connections (default
	// 15 s; a negative value disables keep-alives).
	KeepAlivePeriod time.Duration
	// HandshakeIdleTimeout aborts a handshake that hears nothing from the
	// remote for this long; a handshake that takes twice as long in total is
	// aborted too (default 5 s).
	HandshakeIdleTimeout time.Duration
	// MaxIncomingStreams is how many bidirectional streams the remote may
	// have open at once (default 256).
	MaxIncomingStreams int64
	// InitialStreamReceiveWindow and MaxStreamReceiveWindow bound one
	// stream's flow-control window, which quic-go grows from the initial to
	// the maximum value as the reader keeps up (defaults 512 KiB and
	// 16 MiB: 16 MiB covers 640 Mbit/s at a 200 ms RTT).
	InitialStreamReceiveWindow uint64
	MaxStreamReceiveWindow     uint64
	// InitialConnectionReceiveWindow and MaxConnectionReceiveWindow bound
	// the window shared by all streams of a connection (defaults 768 KiB and
	// 24 MiB).
	InitialConnectionReceiveWindow uint64
	MaxConnectionReceiveWindow     uint64
	// StreamHeaderTimeout bounds how long AcceptStream waits for the
	// protocol header of a stream the remote opened (default 10 s); a stream
	// whose header does not arrive in time is reset.
	StreamHeaderTimeout time.Duration
	// Logger receives the transport's logs (default slog.Default()).
	Logger *slog.Logger

	// Datagrams (RFC 9221) are always enabled.
}

// Defaults of Config, used for fields left zero.
const (
	DefaultMaxIdleTimeout                 = 30 * time.Second
	DefaultKeepAlivePeriod                = 15 * time.Second
	DefaultHandshakeIdleTimeout           = 5 * time.Second
	DefaultMaxIncomingStreams             = 256
	DefaultInitialStreamReceiveWindow     = 512 << 10
	DefaultMaxStreamReceiveWindow         = 16 << 20
	DefaultInitialConnectionReceiveWindow = 768 << 10
	DefaultMaxConnectionReceiveWindow     = 24 << 20
	DefaultStreamHeaderTimeout            = 10 * time.Second
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.MaxIdleTimeout <= 0 {
		c.MaxIdleTimeout = DefaultMaxIdleTimeout
	}
	switch {
	case c.KeepAlivePeriod == 0:
		c.KeepAlivePeriod = DefaultKeepAlivePeriod
	case c.KeepAlivePeriod < 0:
		c.KeepAlivePeriod = 0 // quic-go: no keep-alives
	}
	if c.HandshakeIdleTimeout <= 0 {
		c.HandshakeIdleTimeout = DefaultHandshakeIdleTimeout
	}
	if c.MaxIncomingStreams <= 0 {
		c.MaxIncomingStreams = DefaultMaxIncomingStreams
	}
	if c.InitialStreamReceiveWindow == 0 {
		c.InitialStreamReceiveWindow = DefaultInitialStreamReceiveWindow
	}
	if c.MaxStreamReceiveWindow == 0 {
		c.MaxStreamReceiveWindow = DefaultMaxStreamReceiveWindow
	}
	if c.InitialConnectionReceiveWindow == 0 {
		c.InitialConnectionReceiveWindow = DefaultInitialConnectionReceiveWindow
	}
	if c.MaxConnectionReceiveWindow == 0 {
		c.MaxConnectionReceiveWindow = DefaultMaxConnectionReceiveWindow
	}
	if c.StreamHeaderTimeout <= 0 {
		c.StreamHeaderTimeout = DefaultStreamHeaderTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
