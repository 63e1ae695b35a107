package quic

import (
	"errors"
	"fmt"
	"io"

	"github.com/ipv8/go-ipv8/protocol"
)

// The stream header opens every stream and names its protocol:
//
//	uvarint(len(id)) || id        1 ≤ len(id) ≤ protocol.MaxIDLen
//
// The length is an unsigned LEB128 varint in its shortest form (1 byte up to
// 127, 2 bytes up to 255). The opener sends it together with the stream's
// first data; the acceptor reads it before handing the stream out.

// maxHeaderLen is the longest valid header: a 2-byte length and the ID.
const maxHeaderLen = 2 + protocol.MaxIDLen

// ErrInvalidStreamHeader is returned for a stream header that is malformed
// (wrapped, with the reason).
var ErrInvalidStreamHeader = errors.New("quic: invalid stream header")

// errHeaderShort reports a header cut short; it wraps io.ErrUnexpectedEOF.
var errHeaderShort = fmt.Errorf("%w: %w", ErrInvalidStreamHeader, io.ErrUnexpectedEOF)

// appendStreamHeader appends the header of a stream for protocol p to b. p
// must be valid (protocol.ID.Validate).
func appendStreamHeader(b []byte, p protocol.ID) []byte {
	n := len(p)
	if n < 0x80 {
		b = append(b, byte(n))
	} else {
		b = append(b, byte(n)|0x80, byte(n>>7))
	}
	return append(b, p...)
}

// streamHeaderLen is the length of the header for p.
func streamHeaderLen(p protocol.ID) int {
	if len(p) < 0x80 {
		return 1 + len(p)
	}
	return 2 + len(p)
}

// parseStreamHeaderLen decodes the length prefix at the start of b and
// returns the ID length and the prefix length.
func parseStreamHeaderLen(b []byte) (idLen, prefixLen int, err error) {
	if len(b) == 0 {
		return 0, 0, errHeaderShort
	}
	if b[0] < 0x80 {
		idLen, prefixLen = int(b[0]), 1
	} else {
		if len(b) < 2 {
			return 0, 0, errHeaderShort
		}
		switch {
		case b[1] >= 0x80: // a third length byte: at least 2^14
			return 0, 0, fmt.Errorf("%w: protocol ID longer than %d bytes", ErrInvalidStreamHeader, protocol.MaxIDLen)
		case b[1] == 0:
			return 0, 0, fmt.Errorf("%w: length not in its shortest form", ErrInvalidStreamHeader)
		}
		idLen, prefixLen = int(b[0]&0x7f)|int(b[1])<<7, 2
	}
	switch {
	case idLen == 0:
		return 0, 0, fmt.Errorf("%w: empty protocol ID", ErrInvalidStreamHeader)
	case idLen > protocol.MaxIDLen:
		return 0, 0, fmt.Errorf("%w: protocol ID of %d bytes, at most %d", ErrInvalidStreamHeader, idLen, protocol.MaxIDLen)
	}
	return idLen, prefixLen, nil
}

// parseStreamHeader reads a stream header from the start of b and returns the
// protocol and the number of bytes the header took.
func parseStreamHeader(b []byte) (protocol.ID, int, error) {
	idLen, k, err := parseStreamHeaderLen(b)
	if err != nil {
		return "", 0, err
	}
	if len(b)-k < idLen {
		return "", 0, errHeaderShort
	}
	return protocol.ID(b[k : k+idLen]), k + idLen, nil
}

// readStreamHeader reads exactly one stream header from r (nothing after it:
// the rest of the stream belongs to the application).
func readStreamHeader(r io.Reader) (protocol.ID, error) {
	var buf [maxHeaderLen]byte
	if _, err := io.ReadFull(r, buf[:1]); err != nil {
		return "", err
	}
	prefix := 1
	if buf[0] >= 0x80 {
		if _, err := io.ReadFull(r, buf[1:2]); err != nil {
			return "", headerReadErr(err)
		}
		prefix = 2
	}
	idLen, _, err := parseStreamHeaderLen(buf[:prefix])
	if err != nil {
		return "", err
	}
	if _, err := io.ReadFull(r, buf[prefix:prefix+idLen]); err != nil {
		return "", headerReadErr(err)
	}
	p, _, err := parseStreamHeader(buf[:prefix+idLen])
	return p, err
}

// headerReadErr turns the EOF of a stream that ended inside its header into
// errHeaderShort; other errors pass unchanged.
func headerReadErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errHeaderShort
	}
	return err
}
