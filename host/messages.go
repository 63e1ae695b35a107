package host

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocol"
)

// ErrBadMessage is returned for a datagram message that cannot be decoded.
var ErrBadMessage = errors.New("host: malformed datagram message")

// A datagram message is the Conn's unreliable datagram:
//
//	uvarint len(protocol ID) | protocol ID | payload
//
// (specified in docs/PROTOCOL.md).

// AppendMessage appends the wire form of a message for proto to b.
func AppendMessage(b []byte, proto protocol.ID, payload []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(proto)))
	b = append(b, proto...)
	return append(b, payload...)
}

// ParseMessage splits a datagram message into its protocol and payload (a
// sub-slice of b).
func ParseMessage(b []byte) (protocol.ID, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n == 0 || n > protocol.MaxIDLen || uint64(len(b)-k) < n {
		return "", nil, ErrBadMessage
	}
	return protocol.ID(b[k : k+int(n)]), b[k+int(n):], nil
}

// SetMessageHandler delivers datagram messages of protocol p to f. f runs
// on the goroutine that received the datagram (the transport's, for the
// raw-UDP transport): it must not block.
func (h *Host) SetMessageHandler(p protocol.ID, f MessageHandler) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs[p] = f
}

// RemoveMessageHandler stops delivering messages of protocol p; they are
// dropped.
func (h *Host) RemoveMessageHandler(p protocol.ID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.msgs, p)
}

// SendMessage sends data to p as one unreliable datagram for protocol proto,
// connecting first when needed. Delivery is not confirmed: a message can be
// lost, and one for a protocol p does not handle is dropped there.
func (h *Host) SendMessage(ctx context.Context, p peer.ID, proto protocol.ID, data []byte) error {
	if err := proto.Validate(); err != nil {
		return err
	}
	e, err := h.connEntryFor(ctx, p)
	if err != nil {
		return err
	}
	msg := AppendMessage(make([]byte, 0, len(proto)+len(data)+2), proto, data)
	if max := e.conn.MaxDatagramSize(); len(msg) > max {
		return fmt.Errorf("%w: %d bytes with the protocol header, the Conn takes %d", ErrMessageTooLarge, len(msg), max)
	}
	if err := e.conn.SendDatagram(msg); err != nil {
		return fmt.Errorf("host: message to %s for %s: %w", p, proto, err)
	}
	return nil
}

// serveDatagrams hands the Conn's datagram messages to their handlers.
func (h *Host) serveDatagrams(e *connEntry) {
	defer h.wg.Done()
	for {
		b, err := e.conn.ReceiveDatagram(h.ctx)
		if err != nil {
			return
		}
		h.inboundMessage(e, b)
	}
}

// inboundMessage hands a datagram message to its protocol's handler.
func (h *Host) inboundMessage(e *connEntry, b []byte) {
	proto, payload, err := ParseMessage(b)
	if err != nil {
		h.log.Debug("dropping datagram", "peer", e.conn.RemotePeer(), "err", err)
		return
	}
	h.mu.Lock()
	f := h.msgs[proto]
	h.mu.Unlock()
	if f == nil {
		h.log.Debug("dropping message for unhandled protocol", "peer", e.conn.RemotePeer(), "protocol", proto)
		return
	}
	f(e.conn.RemotePeer(), payload)
}
