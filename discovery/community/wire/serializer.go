package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"unicode/utf8"
)

// Errors a caller may branch on. Every decoding error wraps ErrMalformed.
var (
	// ErrMalformed: the bytes are not a valid encoding.
	ErrMalformed = errors.New("wire: malformed packet")
	// ErrShort: the bytes ended before the field did (wraps ErrMalformed).
	ErrShort = fmt.Errorf("%w: truncated", ErrMalformed)
	// ErrTooLong: a value does not fit its length prefix (encoding).
	ErrTooLong = errors.New("wire: value too long for its length prefix")
	// ErrNotIPv4: an ipv4 field was given an IPv6 address (encoding).
	ErrNotIPv4 = errors.New("wire: ipv4 field needs an IPv4 address")
)

// Address types of the ip_address primitive.
const (
	AddrTypeIPv4 = 0x01
	AddrTypeIPv6 = 0x03
)

// Reader decodes py-ipv8's primitives from a byte slice, big-endian. The
// first error sticks: later reads return zero values and Err reports it, so
// a decoder reads every field and checks once. Slices it returns alias the
// input.
type Reader struct {
	b   []byte
	off int
	err error
}

// NewReader returns a Reader over b.
func NewReader(b []byte) Reader { return Reader{b: b} }

// Err returns the first error met, or nil.
func (r *Reader) Err() error { return r.err }

// Len is the number of unread bytes.
func (r *Reader) Len() int { return len(r.b) - r.off }

// Offset is the number of bytes read so far.
func (r *Reader) Offset() int { return r.off }

// Done returns the sticky error, or an error if bytes are left over.
func (r *Reader) Done() error {
	if r.err == nil && r.off != len(r.b) {
		r.err = fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(r.b)-r.off)
	}
	return r.err
}

// Fail records err (if no error was recorded yet) so that decoders of
// composite payloads can report their own checks through the Reader.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *Reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.err = fmt.Errorf("%w reading %s (%d bytes left, want %d)", ErrShort, what, len(r.b)-r.off, n)
		return nil
	}
	p := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return p
}

// Bytes reads n raw bytes ('Ns' in py-ipv8's format lists).
func (r *Reader) Bytes(n int) []byte { return r.take(n, "fixed bytes") }

// Uint8 reads 'B'.
func (r *Reader) Uint8() uint8 {
	if p := r.take(1, "B"); p != nil {
		return p[0]
	}
	return 0
}

// Bool reads '?': one byte, any non-zero value is true (as Python's struct).
func (r *Reader) Bool() bool { return r.Uint8() != 0 }

// Uint16 reads 'H'.
func (r *Reader) Uint16() uint16 {
	if p := r.take(2, "H"); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

// Uint32 reads 'I'.
func (r *Reader) Uint32() uint32 {
	if p := r.take(4, "I"); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

// Uint64 reads 'Q'.
func (r *Reader) Uint64() uint64 {
	if p := r.take(8, "Q"); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

// Int8 reads 'b'.
func (r *Reader) Int8() int8 { return int8(r.Uint8()) }

// Int16 reads 'h'.
func (r *Reader) Int16() int16 { return int16(r.Uint16()) }

// Int32 reads 'i'.
func (r *Reader) Int32() int32 { return int32(r.Uint32()) }

// Int64 reads 'q'.
func (r *Reader) Int64() int64 { return int64(r.Uint64()) }

// Float64 reads 'd'.
func (r *Reader) Float64() float64 { return math.Float64frombits(r.Uint64()) }

// VarLenH reads 'varlenH': a 2-byte length and that many bytes.
func (r *Reader) VarLenH() []byte {
	n := r.Uint16()
	return r.take(int(n), "varlenH")
}

// VarLenI reads 'varlenI': a 4-byte length and that many bytes.
func (r *Reader) VarLenI() []byte {
	n := r.Uint32()
	if n > math.MaxInt32 {
		r.Fail(fmt.Errorf("%w: varlenI length %d", ErrMalformed, n))
		return nil
	}
	return r.take(int(n), "varlenI")
}

// VarLenHUTF8 reads 'varlenHutf8': varlenH holding UTF-8 text.
func (r *Reader) VarLenHUTF8() string {
	p := r.VarLenH()
	if r.err != nil {
		return ""
	}
	if !utf8.Valid(p) {
		r.Fail(fmt.Errorf("%w: varlenHutf8 is not UTF-8", ErrMalformed))
		return ""
	}
	return string(p)
}

// IPv4 reads 'ipv4': 4 address bytes and a 2-byte port.
func (r *Reader) IPv4() netip.AddrPort {
	p := r.take(6, "ipv4")
	if p == nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(p[:4])), binary.BigEndian.Uint16(p[4:]))
}

// IPAddress reads 'ip_address': a type byte, then IPv4 (4+2) or IPv6 (16+2).
func (r *Reader) IPAddress() netip.AddrPort {
	switch t := r.Uint8(); {
	case r.err != nil:
		return netip.AddrPort{}
	case t == AddrTypeIPv4:
		return r.IPv4()
	case t == AddrTypeIPv6:
		p := r.take(18, "ip_address IPv6")
		if p == nil {
			return netip.AddrPort{}
		}
		// An IPv4-mapped IPv6 address names an IPv4 host: it is returned
		// unmapped, as every address this package decodes.
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(p[:16])).Unmap(), binary.BigEndian.Uint16(p[16:]))
	default:
		r.Fail(fmt.Errorf("%w: ip_address type 0x%02x", ErrMalformed, t))
		return netip.AddrPort{}
	}
}

// Raw reads 'raw': every remaining byte.
func (r *Reader) Raw() []byte { return r.take(r.Len(), "raw") }

// Writer appends py-ipv8's primitives to a byte slice, big-endian. The first
// error sticks, as in Reader.
type Writer struct {
	B   []byte
	err error
}

// NewWriter returns a Writer appending to b.
func NewWriter(b []byte) Writer { return Writer{B: b} }

// Err returns the first error met, or nil.
func (w *Writer) Err() error { return w.err }

// Bytes returns the encoding and the first error.
func (w *Writer) Bytes() ([]byte, error) { return w.B, w.err }

// Fail records err if no error was recorded yet.
func (w *Writer) Fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// Raw appends p as is ('raw', or 'Ns' for a fixed size).
func (w *Writer) Raw(p []byte) { w.B = append(w.B, p...) }

// Uint8 appends 'B'.
func (w *Writer) Uint8(v uint8) { w.B = append(w.B, v) }

// Bool appends '?'.
func (w *Writer) Bool(v bool) {
	if v {
		w.B = append(w.B, 1)
	} else {
		w.B = append(w.B, 0)
	}
}

// Uint16 appends 'H'.
func (w *Writer) Uint16(v uint16) { w.B = binary.BigEndian.AppendUint16(w.B, v) }

// Uint32 appends 'I'.
func (w *Writer) Uint32(v uint32) { w.B = binary.BigEndian.AppendUint32(w.B, v) }

// Uint64 appends 'Q'.
func (w *Writer) Uint64(v uint64) { w.B = binary.BigEndian.AppendUint64(w.B, v) }

// Int8 appends 'b'.
func (w *Writer) Int8(v int8) { w.Uint8(uint8(v)) }

// Int16 appends 'h'.
func (w *Writer) Int16(v int16) { w.Uint16(uint16(v)) }

// Int32 appends 'i'.
func (w *Writer) Int32(v int32) { w.Uint32(uint32(v)) }

// Int64 appends 'q'.
func (w *Writer) Int64(v int64) { w.Uint64(uint64(v)) }

// Float64 appends 'd'.
func (w *Writer) Float64(v float64) { w.Uint64(math.Float64bits(v)) }

// VarLenH appends 'varlenH'.
func (w *Writer) VarLenH(p []byte) {
	if len(p) > math.MaxUint16 {
		w.Fail(fmt.Errorf("%w: varlenH of %d bytes", ErrTooLong, len(p)))
		return
	}
	w.Uint16(uint16(len(p)))
	w.B = append(w.B, p...)
}

// VarLenI appends 'varlenI'.
func (w *Writer) VarLenI(p []byte) {
	if uint64(len(p)) > math.MaxUint32 {
		w.Fail(fmt.Errorf("%w: varlenI of %d bytes", ErrTooLong, len(p)))
		return
	}
	w.Uint32(uint32(len(p)))
	w.B = append(w.B, p...)
}

// VarLenHUTF8 appends 'varlenHutf8'. Invalid UTF-8 is refused, because
// py-ipv8 would fail to decode it.
func (w *Writer) VarLenHUTF8(s string) {
	if !utf8.ValidString(s) {
		w.Fail(fmt.Errorf("%w: varlenHutf8 needs UTF-8 text", ErrMalformed))
		return
	}
	if len(s) > math.MaxUint16 {
		w.Fail(fmt.Errorf("%w: varlenHutf8 of %d bytes", ErrTooLong, len(s)))
		return
	}
	w.Uint16(uint16(len(s)))
	w.B = append(w.B, s...)
}

// IPv4 appends 'ipv4'. The zero AddrPort encodes as 0.0.0.0:0 (py-ipv8's
// "no address"); IPv4-mapped IPv6 addresses are unmapped.
func (w *Writer) IPv4(a netip.AddrPort) {
	ip := a.Addr().Unmap()
	if !a.IsValid() {
		ip = netip.IPv4Unspecified()
	}
	if !ip.Is4() {
		w.Fail(fmt.Errorf("%w: %s", ErrNotIPv4, a))
		return
	}
	b4 := ip.As4()
	w.B = append(w.B, b4[:]...)
	w.Uint16(a.Port())
}

// IPAddress appends 'ip_address'. The zero AddrPort encodes as the IPv4
// 0.0.0.0:0.
func (w *Writer) IPAddress(a netip.AddrPort) {
	ip := a.Addr().Unmap()
	if !a.IsValid() || ip.Is4() {
		w.Uint8(AddrTypeIPv4)
		w.IPv4(a)
		return
	}
	w.Uint8(AddrTypeIPv6)
	b16 := ip.As16()
	w.B = append(w.B, b16[:]...)
	w.Uint16(a.Port())
}

// IsZeroAddr reports whether a means "no address": the zero AddrPort or
// 0.0.0.0:0 / [::]:0 as py-ipv8 sends it.
func IsZeroAddr(a netip.AddrPort) bool {
	return !a.IsValid() || (a.Addr().IsUnspecified() && a.Port() == 0)
}
