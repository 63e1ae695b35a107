// Package protocol names application protocols. A protocol.ID such as
// "/ipv8/ping/1" selects the handler of a stream or datagram message on a
// Host; it travels in the stream's opening, so selecting it costs no round
// trip.
package protocol

import (
	"errors"
	"fmt"
)

// ID names a protocol, by convention "/name/version".
type ID string

// MaxIDLen bounds the length of a protocol ID on the wire.
const MaxIDLen = 255

// ErrInvalidID is returned for an empty or over-long protocol ID.
var ErrInvalidID = errors.New("protocol: invalid protocol ID")

// Validate checks that id can be sent on the wire.
func (id ID) Validate() error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidID)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidID, len(id), MaxIDLen)
	}
	return nil
}
