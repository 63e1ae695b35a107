package labtest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/ipv8/go-ipv8/transport"
)

const bulkProtocol = "/ipv8/test/bulk/1"

// transfer streams size pseudo-random bytes from conn a to conn b and
// reports both sides' SHA-256 (equal when the stream arrived
// byte-exact). received counts the bytes b read so far, for the test to
// act mid-transfer.
type transfer struct {
	size     int64
	received atomic.Int64
	sent     atomic.Int64
	wantSum  [32]byte
	gotSum   [32]byte
	done     chan error
}

// pace sleeps until sending sent bytes since start keeps to rate bytes a
// second.
func pace(start time.Time, sent int64, rate float64) {
	if ahead := time.Duration(float64(sent)/rate*float64(time.Second)) - time.Since(start); ahead > 0 {
		time.Sleep(ahead)
	}
}

func startTransfer(ctx context.Context, a, b transport.Conn, size int64, seed uint64) *transfer {
	return startPacedTransfer(ctx, a, b, size, seed, 0)
}

// startPacedTransfer is startTransfer writing at most rate bytes a second
// (0: as fast as the stream takes them).
func startPacedTransfer(ctx context.Context, a, b transport.Conn, size int64, seed uint64, rate float64) *transfer {
	tr := &transfer{size: size, done: make(chan error, 2)}
	go func() {
		s, err := a.OpenStream(ctx, bulkProtocol)
		if err != nil {
			tr.done <- fmt.Errorf("open stream: %w", err)
			return
		}
		h := sha256.New()
		src := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
		buf := make([]byte, 256<<10)
		start := time.Now()
		for left := size; left > 0; {
			if rate > 0 {
				pace(start, size-left, rate)
			}
			n := int(min(int64(len(buf)), left))
			src.Read(buf[:n])
			h.Write(buf[:n])
			if _, err := s.Write(buf[:n]); err != nil {
				tr.done <- fmt.Errorf("write after %d bytes: %w", size-left, err)
				return
			}
			left -= int64(n)
			tr.sent.Add(int64(n))
		}
		copy(tr.wantSum[:], h.Sum(nil))
		tr.done <- s.CloseWrite()
	}()
	go func() {
		s, err := b.AcceptStream(ctx)
		if err != nil {
			tr.done <- fmt.Errorf("accept stream: %w", err)
			return
		}
		h := sha256.New()
		buf := make([]byte, 256<<10)
		for {
			n, err := s.Read(buf)
			h.Write(buf[:n])
			tr.received.Add(int64(n))
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				tr.done <- fmt.Errorf("read after %d bytes: %w", tr.received.Load(), err)
				return
			}
		}
		copy(tr.gotSum[:], h.Sum(nil))
		s.Close()
		tr.done <- nil
	}()
	return tr
}

// wait waits for both sides and checks the stream arrived whole.
func (tr *transfer) wait(ctx context.Context) error {
	for range 2 {
		select {
		case err := <-tr.done:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return fmt.Errorf("transfer: %d of %d bytes after the deadline: %w", tr.received.Load(), tr.size, ctx.Err())
		}
	}
	if tr.received.Load() != tr.size {
		return fmt.Errorf("received %d bytes of %d", tr.received.Load(), tr.size)
	}
	if tr.gotSum != tr.wantSum {
		return errors.New("the stream arrived, but not byte-exact (SHA-256 differs)")
	}
	return nil
}

// waitReceived waits until at least n bytes arrived.
func (tr *transfer) waitReceived(ctx context.Context, n int64) error {
	for tr.received.Load() < n {
		select {
		case err := <-tr.done:
			tr.done <- err
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d bytes, %d arrived: %w", n, tr.received.Load(), ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}
