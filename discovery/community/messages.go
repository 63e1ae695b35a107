package community

import (
	"fmt"
	"net/netip"

	"github.com/ipv8/go-ipv8/discovery"
	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/peer"
)

// Message is an application message delivered to a Handler. It is valid
// only during the call: copy what you keep.
type Message struct {
	ID     byte
	From   netip.AddrPort
	Signed bool
	// Key and Mid identify the sender of a signed message (nil and zero
	// for unsigned ones). The signature was checked before delivery.
	Key        *peer.PublicKey
	Mid        discovery.Mid
	GlobalTime uint64
	Payload    []byte
}

// PeerID returns the sender's peer.ID ("" for unsigned messages).
func (m *Message) PeerID() peer.ID {
	if m.Key == nil {
		return ""
	}
	return peer.IDFromPublicKey(m.Key)
}

// Handler handles one application message. It runs on the endpoint's
// worker goroutine (the port's read goroutine for an Inline endpoint): it
// must not block (hand long work to a goroutine), or packets queue behind
// it and, past the endpoint's queue limit, are dropped.
type Handler func(m *Message)

type handlerEntry struct {
	h      Handler
	signed bool
}

// Handle registers h for message id (0–230). signed says whether the
// message carries the sender's key and signature (py-ipv8's lazy_wrapper)
// or not (lazy_wrapper_unsigned); a packet whose signature does not verify
// is dropped and counted, never delivered.
func (c *Community) Handle(id byte, signed bool, h Handler) error {
	if id >= wire.FirstReserved {
		return fmt.Errorf("%w (got %d)", ErrReservedID, id)
	}
	c.hmu.Lock()
	defer c.hmu.Unlock()
	if c.handlers == nil {
		c.handlers = new([wire.FirstReserved]handlerEntry)
	}
	if h == nil {
		c.handlers[id] = handlerEntry{}
		return nil
	}
	if c.handlers[id].h != nil {
		return fmt.Errorf("%w: %d", ErrHandlerExists, id)
	}
	c.handlers[id] = handlerEntry{h: h, signed: signed}
	return nil
}

// Register registers a handler for signed message id whose payload is the
// struct T, decoded with wire.Unmarshal (py-ipv8's dataclass payloads). A
// payload that does not decode is dropped and counted as malformed.
func Register[T any](c *Community, id byte, h func(m *Message, v *T)) error {
	var zero T
	if _, err := wire.Marshal(nil, &zero); err != nil {
		return err
	}
	return c.Handle(id, true, func(m *Message) {
		v := new(T)
		if err := wire.Unmarshal(m.Payload, v); err != nil {
			c.stats.malformed.Add(1)
			return
		}
		h(m, v)
	})
}

// Send signs and sends an application message to one address.
func (c *Community) Send(to netip.AddrPort, id byte, payload []byte) error {
	gt, err := c.appTime(id)
	if err != nil {
		return err
	}
	pkt := c.signer.AppendSigned(make([]byte, 0, wire.MinSigned+len(payload)), c.id, id, gt, payload)
	return c.ep.send(pkt, to)
}

// SendUnsigned sends an unsigned application message.
func (c *Community) SendUnsigned(to netip.AddrPort, id byte, payload []byte) error {
	gt, err := c.appTime(id)
	if err != nil {
		return err
	}
	return c.ep.send(wire.AppendUnsigned(make([]byte, 0, wire.MinUnsigned+len(payload)), c.id, id, gt, payload), to)
}

// appTime checks that an application may send message id now and claims
// the global time for it.
func (c *Community) appTime(id byte) (uint64, error) {
	if id >= wire.FirstReserved {
		return 0, fmt.Errorf("%w (got %d)", ErrReservedID, id)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, ErrClosed
	}
	return c.claimTime(), nil
}

// SendPayload encodes v with wire.Marshal and sends it signed.
func SendPayload[T any](c *Community, to netip.AddrPort, id byte, v *T) error {
	payload, err := wire.Marshal(nil, v)
	if err != nil {
		return err
	}
	return c.Send(to, id, payload)
}
