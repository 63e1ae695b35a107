package quic

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/ipv8/go-ipv8/protocol"
	"github.com/ipv8/go-ipv8/transport"
)

// firstWriteCoalesce is how much of the first Write travels in one buffer
// with the stream header, so that they leave in the same packet.
const firstWriteCoalesce = 16 << 10

// stream is a QUIC stream whose protocol is known. Its opener holds the
// protocol header back until the stream's first Write, Read or Close.
type stream struct {
	c     *conn
	qs    *quicgo.Stream
	proto protocol.ID

	hdrPending atomic.Bool // hdr still holds bytes to send
	hdrMu      sync.Mutex
	hdr        []byte
}

var _ transport.Stream = (*stream)(nil)

func newStream(c *conn, qs *quicgo.Stream, p protocol.ID, opener bool) *stream {
	s := &stream{c: c, qs: qs, proto: p}
	if opener {
		s.hdr = appendStreamHeader(make([]byte, 0, streamHeaderLen(p)), p)
		s.hdrPending.Store(true)
	}
	return s
}

func (s *stream) Protocol() protocol.ID { return s.proto }
func (s *stream) Conn() transport.Conn  { return s.c }

// LocalAddr and RemoteAddr are the connection's UDP addresses.
func (s *stream) LocalAddr() net.Addr  { return s.c.qc.LocalAddr() }
func (s *stream) RemoteAddr() net.Addr { return s.c.qc.RemoteAddr() }

func (s *stream) SetDeadline(t time.Time) error      { return s.qs.SetDeadline(t) }
func (s *stream) SetReadDeadline(t time.Time) error  { return s.qs.SetReadDeadline(t) }
func (s *stream) SetWriteDeadline(t time.Time) error { return s.qs.SetWriteDeadline(t) }

// err maps an error of a quic-go operation on this stream.
func (s *stream) err(err error) error {
	if err == nil || err == io.EOF || errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	return s.c.streamErr(err, s.proto)
}

// Read reads stream data. If the remote reset the stream (for example
// because it does not serve the protocol) the error is a
// *transport.StreamError.
func (s *stream) Read(b []byte) (int, error) {
	if s.hdrPending.Load() {
		// The opener reads first: the remote sees the stream only once the
		// header arrives.
		if err := s.flushHeader(); err != nil {
			return 0, err
		}
	}
	n, err := s.qs.Read(b)
	return n, s.err(err)
}

// Write writes stream data; the first Write of the opener carries the
// protocol header in front of it.
func (s *stream) Write(b []byte) (int, error) {
	var n int
	if s.hdrPending.Load() {
		var done bool
		var err error
		n, done, err = s.writeWithHeader(b)
		if err != nil || done {
			return n, err
		}
	}
	m, err := s.qs.Write(b[n:])
	return n + m, s.err(err)
}

// writeWithHeader writes the pending header together with the start of b. It
// returns how much of b it wrote and whether that was all of it.
func (s *stream) writeWithHeader(b []byte) (n int, done bool, err error) {
	s.hdrMu.Lock()
	defer s.hdrMu.Unlock()
	h := len(s.hdr)
	if h == 0 {
		return 0, false, nil
	}
	k := min(len(b), firstWriteCoalesce)
	buf := make([]byte, 0, h+k)
	buf = append(append(buf, s.hdr...), b[:k]...)
	m, err := s.qs.Write(buf)
	if m < h {
		s.hdr = s.hdr[m:] // the rest of the header goes first next time
		return 0, false, s.err(err)
	}
	s.hdr = nil
	s.hdrPending.Store(false)
	return m - h, k == len(b), s.err(err)
}

// flushHeader sends the pending header on its own.
func (s *stream) flushHeader() error {
	s.hdrMu.Lock()
	defer s.hdrMu.Unlock()
	if len(s.hdr) > 0 {
		m, err := s.qs.Write(s.hdr)
		s.hdr = s.hdr[m:]
		if err != nil {
			return s.err(err)
		}
	}
	s.hdr = nil
	s.hdrPending.Store(false)
	return nil
}

// CloseWrite sends FIN: the remote reads io.EOF after the data sent.
func (s *stream) CloseWrite() error {
	if s.hdrPending.Load() {
		if err := s.flushHeader(); err != nil {
			return err
		}
	}
	err := s.qs.Close()
	if err != nil {
		// quic-go refuses to close a reset send side with a plain error;
		// the reset itself is the cause of the stream's context.
		if _, ok := errors.AsType[*quicgo.StreamError](context.Cause(s.qs.Context())); ok {
			err = context.Cause(s.qs.Context())
		}
	}
	return s.err(err)
}

// CloseRead tells the remote (STOP_SENDING with CodeNoError) that nothing
// more will be read.
func (s *stream) CloseRead() error {
	s.qs.CancelRead(quicgo.StreamErrorCode(transport.CodeNoError))
	return nil
}

// Close closes both directions gracefully: FIN after the data written, and
// STOP_SENDING for data the remote might still send.
func (s *stream) Close() error {
	err := s.CloseWrite()
	s.qs.CancelRead(quicgo.StreamErrorCode(transport.CodeNoError))
	return err
}

// Reset aborts both directions with code (RESET_STREAM and STOP_SENDING).
func (s *stream) Reset(code transport.ErrorCode) error {
	s.hdrMu.Lock()
	s.hdr = nil
	s.hdrPending.Store(false)
	s.hdrMu.Unlock()
	s.qs.CancelWrite(quicgo.StreamErrorCode(code))
	s.qs.CancelRead(quicgo.StreamErrorCode(code))
	return nil
}
