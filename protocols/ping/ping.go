// Package ping measures the round-trip time to a connected peer: the
// opener writes 32 random bytes, the other side echoes them. It is libp2p's
// ping protocol, so go-libp2p peers answer it too.
package ping

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocol"
	"github.com/ipv8/go-ipv8/protocols"
	"github.com/ipv8/go-ipv8/transport"
)

// ID is the ping protocol.
const ID protocol.ID = "/ipfs/ping/1.0.0"

// Size is the size of one ping.
const Size = 32

// idleTimeout ends a served ping stream that sends nothing.
const idleTimeout = time.Minute

// ErrMismatch is returned when the echo differs from what was sent.
var ErrMismatch = errors.New("ping: echo does not match")

// Host is what ping needs of a host (host.Host satisfies it).
type Host = protocols.Host

// Register serves ping on h.
func Register(h Host) { h.SetStreamHandler(ID, Serve) }

// Serve echoes pings on s until the opener closes it.
func Serve(s transport.Stream) {
	defer s.Close()
	buf := make([]byte, Size)
	for {
		s.SetReadDeadline(time.Now().Add(idleTimeout))
		if _, err := io.ReadFull(s, buf); err != nil {
			return
		}
		if _, err := s.Write(buf); err != nil {
			s.Reset(transport.CodeInternal)
			return
		}
	}
}

// Result is one ping: its RTT or the error that ended the series.
type Result struct {
	RTT   time.Duration
	Error error
}

// Ping pings p every interval until ctx ends or a ping fails, sending each
// result on the returned channel (closed at the end). The first ping goes
// out at once.
func Ping(ctx context.Context, h Host, p peer.ID, interval time.Duration) <-chan Result {
	out := make(chan Result, 1)
	go func() {
		defer close(out)
		s, err := h.NewStream(ctx, p, ID)
		if err != nil {
			out <- Result{Error: err}
			return
		}
		defer s.Close()
		stop := context.AfterFunc(ctx, func() { s.SetDeadline(time.Now()) })
		defer stop()
		for {
			rtt, err := Once(s)
			if ctx.Err() != nil {
				return
			}
			select {
			case out <- Result{RTT: rtt, Error: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
			select {
			case <-time.After(interval):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// Once sends one ping on an open ping stream and waits for its echo.
func Once(s transport.Stream) (time.Duration, error) {
	buf := make([]byte, 2*Size)
	if _, err := rand.Read(buf[:Size]); err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := s.Write(buf[:Size]); err != nil {
		return 0, fmt.Errorf("ping: %w", err)
	}
	if _, err := io.ReadFull(s, buf[Size:]); err != nil {
		return 0, fmt.Errorf("ping: %w", err)
	}
	rtt := time.Since(start)
	if !bytes.Equal(buf[:Size], buf[Size:]) {
		return 0, ErrMismatch
	}
	return rtt, nil
}
