package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The compared stacks (stackUDPParts, the UDP pieces without the Host, is
// in parts_test.go).
const (
	stackQUIC        = "quic-go"       // bare quic-go, mutual TLS 1.3 (ECDSA P-256 certificates)
	stackLibp2pQUIC  = "libp2p-quic"   // go-libp2p over QUIC (its TLS identity scheme)
	stackLibp2pTCP   = "libp2p-tcp"    // go-libp2p over TCP + Noise XX + yamux
	stackIPv8QUIC    = "ipv8-quic"     // go-ipv8's QUIC transport through the Host
	stackIPv8UDP     = "ipv8-udp"      // go-ipv8's raw-UDP transport (Noise + mux) through the Host
	stackIPv8UDP0RTT = "ipv8-udp-0rtt" // the same with host.WithEarlyData (connect benchmark only)
)

const (
	echoProto        = "/bench/echo/1.0.0"
	perfProto        = "/perf/1.0.0" // libp2p's perf protocol, served by every stack
	perfBlockSize    = 64 << 10
	perfHeaderLength = 8
	dialTimeout      = 30 * time.Second
)

// A stack is one compared network stack on loopback: a server that serves
// perf and echo and counts the connections it has established and
// authenticated, one client already connected to it for throughput runs,
// and a way to make fresh clients (own identity, own socket, no state about
// the server) for set-up measurements.
type stack struct {
	name string
	// transfer uploads n bytes with the perf protocol over a new stream of
	// the established connection and returns the time from the first byte
	// written to the server's end of stream (the server has read it all).
	transfer func(n uint64) (time.Duration, error)
	// newClient makes a client that has not contacted the server yet.
	newClient func() (client, error)
	// accepted counts connections the server has completed.
	accepted *atomic.Int64
}

// A client is one fresh dialler of a stack.
type client interface {
	// connect establishes an authenticated connection to the server: it
	// returns when the client has verified the server (the server verifies
	// the client in the same flight; stack.accepted counts that end).
	connect(ctx context.Context) error
	// echo opens a stream on the connection, writes one byte and reads it
	// back from the server.
	echo(ctx context.Context) error
	// close ends the client and everything it holds.
	close()
}

// halfCloser is a stream as the perf client needs it.
type halfCloser interface {
	io.ReadWriter
	CloseWrite() error
}

var zeroBlock = make([]byte, perfBlockSize)

// runPerf is libp2p's perf protocol, client side, with nothing to
// download: an 8-byte big-endian download length (0), n bytes, a
// half-close, then read until the server's end of stream. Every stack runs
// this same client code.
func runPerf(s halfCloser, n uint64) (time.Duration, error) {
	var hdr [perfHeaderLength]byte
	start := time.Now()
	if _, err := s.Write(hdr[:]); err != nil {
		return 0, err
	}
	for left := n; left > 0; {
		k := min(left, perfBlockSize)
		if _, err := s.Write(zeroBlock[:k]); err != nil {
			return 0, fmt.Errorf("perf upload: %w", err)
		}
		left -= k
	}
	if err := s.CloseWrite(); err != nil {
		return 0, err
	}
	got, err := io.Copy(io.Discard, s)
	if err != nil {
		return 0, fmt.Errorf("perf: waiting for the server's end of stream: %w", err)
	}
	if got != 0 {
		return 0, fmt.Errorf("perf: server sent %d bytes, asked for 0", got)
	}
	return time.Since(start), nil
}

// servePerf is the server side of runPerf for stacks without go-ipv8's
// perf package: read the length, discard the upload, send the asked
// bytes, close.
func servePerf(s io.ReadWriteCloser) error {
	var hdr [perfHeaderLength]byte
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		return err
	}
	want := binary.BigEndian.Uint64(hdr[:])
	if want > 1<<40 {
		return errors.New("perf: download too large")
	}
	if _, err := io.CopyBuffer(io.Discard, s, make([]byte, perfBlockSize)); err != nil {
		return err
	}
	for want > 0 {
		k := min(want, perfBlockSize)
		if _, err := s.Write(zeroBlock[:k]); err != nil {
			return err
		}
		want -= k
	}
	return s.Close()
}

// echoOnce writes one byte on s and reads it back.
func echoOnce(s io.ReadWriter) error {
	if _, err := s.Write([]byte{0x2a}); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(s, b[:]); err != nil {
		return err
	}
	if b[0] != 0x2a {
		return fmt.Errorf("echo: got %#x, want 0x2a", b[0])
	}
	return nil
}

// waitAccepted waits until the server of st has completed want
// connections in total.
func waitAccepted(ctx context.Context, st *stack, want int64) error {
	for st.accepted.Load() < want {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: server completed %d of %d connections: %w", st.name, st.accepted.Load(), want, ctx.Err())
		}
		time.Sleep(50 * time.Microsecond)
	}
	return nil
}

// connectEcho is the set-up measurement: from a fresh client to a stream
// opened and one byte echoed. Only that part is timed; making and closing
// the client is not.
func connectEcho(st *stack) (time.Duration, error) {
	c, err := st.newClient()
	if err != nil {
		return 0, err
	}
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	runtime.GC() // as in handshakes: the client's making is not timed
	start := time.Now()
	if err := c.connect(ctx); err != nil {
		return 0, fmt.Errorf("%s: connect: %w", st.name, err)
	}
	if err := c.echo(ctx); err != nil {
		return 0, fmt.Errorf("%s: echo: %w", st.name, err)
	}
	return time.Since(start), nil
}

// handshakes makes n fresh clients (untimed), then connects them to the
// server with inFlight at a time, and returns the time from the first dial
// until every client has connected and the server has completed every
// connection, and the CPU time the process (both ends) used meanwhile. The
// clients are closed afterwards (untimed).
func handshakes(st *stack, n, inFlight int) (elapsed, cpu time.Duration, err error) {
	clients := make([]client, 0, n)
	defer func() {
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Go(c.close)
		}
		wg.Wait()
	}()
	for range n {
		c, err := st.newClient()
		if err != nil {
			return 0, 0, err
		}
		clients = append(clients, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*dialTimeout)
	defer cancel()
	target := st.accepted.Load() + int64(n)
	next := make(chan client)
	errs := make(chan error, inFlight)
	var wg sync.WaitGroup
	// Collect the garbage of making the clients now, so that it is not
	// charged to the handshakes (go-ipv8's hosts allocate megabytes each).
	runtime.GC()
	start, cpu0 := time.Now(), processCPU()
	for range inFlight {
		wg.Go(func() {
			for c := range next {
				if err := c.connect(ctx); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for _, c := range clients {
		next <- c
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return 0, 0, fmt.Errorf("%s: handshake: %w", st.name, err)
	default:
	}
	if err := waitAccepted(ctx, st, target); err != nil {
		return 0, 0, err
	}
	return time.Since(start), processCPU() - cpu0, nil
}
