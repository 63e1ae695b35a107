// Package perf measures throughput to a peer with libp2p's perf protocol:
// the client writes the number of bytes it wants back (8 bytes, big
// endian), uploads its data, half-closes, and reads the reply until EOF.
package perf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocol"
	"github.com/ipv8/go-ipv8/protocols"
	"github.com/ipv8/go-ipv8/transport"
)

// ID is the perf protocol.
const ID protocol.ID = "/perf/1.0.0"

// MaxDownload bounds what a client may ask a server to send (1 TiB).
const MaxDownload = 1 << 40

const blockSize = 64 << 10

// ErrShort is returned when the server sends fewer bytes than asked.
var ErrShort = errors.New("perf: short download")

// Host is what perf needs of a host (host.Host satisfies it).
type Host = protocols.Host

// Register serves perf on h.
func Register(h Host) { h.SetStreamHandler(ID, Serve) }

// Serve answers one perf request on s.
func Serve(s transport.Stream) {
	var hdr [8]byte
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		s.Reset(transport.CodeInternal)
		return
	}
	want := binary.BigEndian.Uint64(hdr[:])
	if want > MaxDownload {
		s.Reset(transport.CodeResourceLimit)
		return
	}
	if _, err := io.Copy(io.Discard, s); err != nil {
		s.Reset(transport.CodeInternal)
		return
	}
	if err := writeN(s, want); err != nil {
		s.Reset(transport.CodeInternal)
		return
	}
	s.Close()
}

// Result is one perf run.
type Result struct {
	Uploaded, Downloaded uint64
	// Upload is the time from the first byte sent to the half-close;
	// Download from the half-close to the last byte read (it includes the
	// server's reaction, one round trip).
	Upload, Download time.Duration
}

// UploadRate is the upload throughput in bytes per second.
func (r Result) UploadRate() float64 { return rate(r.Uploaded, r.Upload) }

// DownloadRate is the download throughput in bytes per second.
func (r Result) DownloadRate() float64 { return rate(r.Downloaded, r.Download) }

func rate(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Run uploads upload bytes to p and downloads download bytes from it.
func Run(ctx context.Context, h Host, p peer.ID, upload, download uint64) (Result, error) {
	s, err := h.NewStream(ctx, p, ID)
	if err != nil {
		return Result{}, err
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.SetDeadline(time.Now()) })
	defer stop()
	return RunOn(s, upload, download)
}

// RunOn runs one perf request on an open stream.
func RunOn(s transport.Stream, upload, download uint64) (Result, error) {
	var res Result
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], download)
	start := time.Now()
	if _, err := s.Write(hdr[:]); err != nil {
		return res, fmt.Errorf("perf: %w", err)
	}
	if err := writeN(s, upload); err != nil {
		return res, fmt.Errorf("perf: upload: %w", err)
	}
	if err := s.CloseWrite(); err != nil {
		return res, fmt.Errorf("perf: %w", err)
	}
	res.Uploaded, res.Upload = upload, time.Since(start)
	start = time.Now()
	n, err := io.CopyBuffer(io.Discard, s, make([]byte, blockSize))
	res.Downloaded, res.Download = uint64(n), time.Since(start)
	if err != nil {
		return res, fmt.Errorf("perf: download: %w", err)
	}
	if uint64(n) != download {
		return res, fmt.Errorf("%w: %d of %d bytes", ErrShort, n, download)
	}
	return res, nil
}

var zeros = make([]byte, blockSize)

func writeN(w io.Writer, n uint64) error {
	for n > 0 {
		k := min(n, blockSize)
		if _, err := w.Write(zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
