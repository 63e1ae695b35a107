package reliable

import (
	"errors"
	"fmt"
)

// Frame types: the first byte of every frame. The formats are specified in
// docs/protocol/mux.md; each frame has its own file with its Append and
// parse functions.
const (
	typePing          = 0x01
	typeAck           = 0x02
	typeAckFrequency  = 0x03
	typeResetStream   = 0x04
	typeStopSending   = 0x05
	typeMaxData       = 0x06
	typeMaxStreamData = 0x07
	typeMaxStreams    = 0x08
	typeDatagram      = 0x09
	typeClose         = 0x0a
	typeStream        = 0x10 // | finBit
	typeStreamOpen    = 0x12 // | finBit
	finBit            = 0x01
)

// Errors of the frame and packet decoders. A packet that fails to parse is
// dropped whole and counted.
var (
	ErrTruncated    = errors.New("reliable: frame truncated")
	ErrUnknownFrame = errors.New("reliable: unknown frame type")
	ErrInvalidFrame = errors.New("reliable: invalid frame")
)

func truncated(what string) error { return fmt.Errorf("%w: %s", ErrTruncated, what) }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidFrame}, args...)...)
}

// reader walks a frame's fields; the first short read sets err and every
// later read returns zero, so parsers check err once at the end.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) varint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := readVarint(r.b[r.off:])
	if n == 0 {
		r.err = truncated(what)
		return 0
	}
	r.off += n
	return v
}

func (r *reader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.err = truncated(what)
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) bytes(n uint64, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.off) {
		r.err = truncated(what)
		return nil
	}
	s := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return s
}
