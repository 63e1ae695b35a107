package relay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/ipv8/go-ipv8/nat/internal/addrwire"
	"github.com/ipv8/go-ipv8/transport"
)

// The relay's packets (docs/protocol/nat.md §Relay). Every packet starts
// with transport.TypeRelay, then a kind byte and two reserved bytes (zero
// when sent, ignored when read). Fields are big-endian.
//
// DATA, the hot path, is 8 bytes of header in front of the relayed
// datagram: both ends and the relay use the same circuit ID, so the relay
// forwards the packet unchanged.

// Kind is the second byte of a relay packet.
type Kind uint8

const (
	KindData      Kind = 0  // either end ↔ relay: a relayed datagram
	KindHello     Kind = 1  // client → relay: asks for a cookie (padded)
	KindChallenge Kind = 2  // relay → client: the cookie for the client's address
	KindReserve   Kind = 3  // client → relay: reserve a slot (signed)
	KindReserved  Kind = 4  // relay → client: the reservation and its limits
	KindConnect   Kind = 5  // initiator → relay: open a circuit to a peer (signed)
	KindIncoming  Kind = 6  // relay → target: someone opens a circuit to you
	KindAccept    Kind = 7  // target → relay: accepted
	KindConnected Kind = 8  // relay → initiator: the circuit is open
	KindError     Kind = 9  // relay → client: a request failed
	KindClose     Kind = 10 // either way: the circuit is closed
	KindPing      Kind = 11 // client → relay: keepalive
	KindPong      Kind = 12 // relay → client: keepalive answer with the observed address
	maxKind            = KindPong
)

var kindNames = [...]string{"data", "hello", "challenge", "reserve", "reserved", "connect", "incoming", "accept", "connected", "error", "close", "ping", "pong"}

func (k Kind) String() string {
	if k <= maxKind {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Sizes on the wire.
const (
	HeaderLen = 4 // type, kind, 2 reserved
	// DataOverhead is what relaying adds to a datagram.
	DataOverhead = HeaderLen + 4
	CookieLen    = 16
	KeyLen       = 32 // an Ed25519 public key
	SigLen       = 64
	// HelloLen is what a HELLO is padded to: no smaller than a CHALLENGE
	// to an IPv6 address, so that the relay's stateless answer never
	// amplifies a spoofed request.
	HelloLen = 64
)

// ErrMalformed wraps every parse error.
var ErrMalformed = errors.New("relay: malformed packet")

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, a...)...)
}

// Limit is what a circuit may carry before the relay closes it; zero
// fields mean no limit.
type Limit struct {
	Duration uint32 // seconds
	Bytes    uint64 // in both directions together
}

const limitLen = 12

func appendLimit(b []byte, l Limit) []byte {
	b = binary.BigEndian.AppendUint32(b, l.Duration)
	return binary.BigEndian.AppendUint64(b, l.Bytes)
}

func parseLimit(b []byte) Limit {
	return Limit{Duration: binary.BigEndian.Uint32(b), Bytes: binary.BigEndian.Uint64(b[4:])}
}

// Addresses are encoded as nat/internal/addrwire says (family, port, address).
func appendAddr(b []byte, a netip.AddrPort) []byte { return addrwire.Append(b, a) }

func parseAddr(b []byte) (netip.AddrPort, int, error) {
	a, n, err := addrwire.Parse(b)
	if err != nil {
		return netip.AddrPort{}, 0, malformed("%v", err)
	}
	return a, n, nil
}

func appendHeader(b []byte, k Kind) []byte {
	return append(b, transport.TypeRelay, byte(k), 0, 0)
}

// AppendDataHeader appends the header of a DATA packet for circuit id;
// the datagram follows it.
func AppendDataHeader(b []byte, id uint32) []byte {
	return binary.BigEndian.AppendUint32(appendHeader(b, KindData), id)
}

// ParseData returns the circuit and the datagram of a DATA packet (the
// datagram aliases pkt).
func ParseData(pkt []byte) (id uint32, payload []byte, err error) {
	if len(pkt) < DataOverhead || pkt[0] != transport.TypeRelay || Kind(pkt[1]) != KindData {
		return 0, nil, malformed("not a data packet")
	}
	return binary.BigEndian.Uint32(pkt[4:8]), pkt[DataOverhead:], nil
}

// Msg is any relay packet but DATA, decoded. Which fields a kind uses:
//
//	hello      Nonce (padded to HelloLen)
//	challenge  Nonce, Cookie, Observed
//	reserve    Nonce, Cookie, Key, Sig
//	reserved   Nonce, TTL, Limit, Observed
//	connect    Nonce, Cookie, Key, Target, Sig
//	incoming   Circuit, Key (the initiator), Limit, Observed (the initiator's address)
//	accept     Circuit
//	connected  Nonce, Circuit, Limit, Observed (the target's address)
//	error      Nonce, Circuit, Code
//	close      Circuit, Code
//	ping       Nonce
//	pong       Nonce, Observed
type Msg struct {
	Kind     Kind
	Nonce    uint64
	Circuit  uint32
	Code     Code
	TTL      uint32 // seconds
	Limit    Limit
	Cookie   [CookieLen]byte
	Key      [KeyLen]byte
	Target   [KeyLen]byte
	Sig      [SigLen]byte
	Observed netip.AddrPort
}

// Append encodes m (not DATA) after b.
func (m *Msg) Append(b []byte) []byte {
	start := len(b)
	b = appendHeader(b, m.Kind)
	switch m.Kind {
	case KindHello:
		b = binary.BigEndian.AppendUint64(b, m.Nonce)
		for len(b)-start < HelloLen {
			b = append(b, 0)
		}
	case KindChallenge:
		b = binary.BigEndian.AppendUint64(b, m.Nonce)
		b = append(b, m.Cookie[:]...)
		b = appendAddr(b, m.Observed)
	case KindReserve:
		b = binary.BigEndian.AppendUint64(b, m.Nonce)
		b = append(b, m.Cookie[:]...)
		b = append(b, m.Key[:]...)
		b = append(b, m.Sig[:]...)
	case KindReserved:
		b = binary.BigEndian.AppendUint64(b, m.Nonce)
		b = binary.BigEndian.AppendUint32(b, m.TTL)
		b = appendLimit(b, m.Limit)
		b = appendAddr(b, m.Observed)
	case KindConnect:
		b = binary.BigEndian.AppendUint64(b, m.Nonce)
		b = append(b, m.Cookie[:]...)
		b = append(b, m.Key[:]...)
		b = append(b, m.Target[:]...)
		b = append(b, m.Sig[:]...)
	case KindIncoming:
		b = binary.BigEndian.AppendUint32(b, m.Circuit)
		b = append(b, m.Key[:]...)
		b = appendLimit(b, m.Limit)
		b = appendAddr(b, m.Observed)
	case KindAccept:
		b = binary.BigEndian.AppendUint32(b, m.Circuit)
	case KindConnected:
		b = binary.BigEndian.AppendUint64(b, m.Nonce)
		b = binary.BigEndian.AppendUint32(b, m.Circuit)
		b = appendLimit(b, m.Limit)
		b = appendAddr(b, m.Observed)
	case KindError:
		b = binary.BigEndian.AppendUint64(b, m.Nonce)
		b = binary.BigEndian.AppendUint32(b, m.Circuit)
		b = binary.BigEndian.AppendUint16(b, uint16(m.Code))
	case KindClose:
		b = binary.BigEndian.AppendUint32(b, m.Circuit)
		b = binary.BigEndian.AppendUint16(b, uint16(m.Code))
	case KindPing:
		b = binary.BigEndian.AppendUint64(b, m.Nonce)
	case KindPong:
		b = binary.BigEndian.AppendUint64(b, m.Nonce)
		b = appendAddr(b, m.Observed)
	}
	return b
}

// fixed is the length of each kind's fields after the header, before an
// address (if any).
var fixed = [...]int{
	KindHello:     8,
	KindChallenge: 8 + CookieLen,
	KindReserve:   8 + CookieLen + KeyLen + SigLen,
	KindReserved:  8 + 4 + limitLen,
	KindConnect:   8 + CookieLen + 2*KeyLen + SigLen,
	KindIncoming:  4 + KeyLen + limitLen,
	KindAccept:    4,
	KindConnected: 8 + 4 + limitLen,
	KindError:     8 + 4 + 2,
	KindClose:     4 + 2,
	KindPing:      8,
	KindPong:      8,
}

// hasAddr says which kinds end with an address.
func hasAddr(k Kind) bool {
	switch k {
	case KindChallenge, KindReserved, KindIncoming, KindConnected, KindPong:
		return true
	}
	return false
}

// ParseMsg decodes a relay packet other than DATA. Bytes after the fields
// are ignored (a HELLO's padding, or fields of a later version), but a
// HELLO shorter than HelloLen is refused.
func ParseMsg(pkt []byte) (Msg, error) {
	var m Msg
	if len(pkt) < HeaderLen || pkt[0] != transport.TypeRelay {
		return m, malformed("not a relay packet")
	}
	m.Kind = Kind(pkt[1])
	if m.Kind == KindData || m.Kind > maxKind {
		return m, malformed("kind %s is not a message", m.Kind)
	}
	b := pkt[HeaderLen:]
	if len(b) < fixed[m.Kind] {
		return m, malformed("%s: %d bytes, want %d", m.Kind, len(b), fixed[m.Kind])
	}
	if m.Kind == KindHello && len(pkt) < HelloLen {
		return m, malformed("hello not padded to %d bytes", HelloLen)
	}
	rd := reader{b: b}
	switch m.Kind {
	case KindHello, KindPing, KindPong:
		m.Nonce = rd.u64()
	case KindChallenge:
		m.Nonce = rd.u64()
		rd.bytes(m.Cookie[:])
	case KindReserve:
		m.Nonce = rd.u64()
		rd.bytes(m.Cookie[:])
		rd.bytes(m.Key[:])
		rd.bytes(m.Sig[:])
	case KindReserved:
		m.Nonce = rd.u64()
		m.TTL = rd.u32()
		m.Limit = rd.limit()
	case KindConnect:
		m.Nonce = rd.u64()
		rd.bytes(m.Cookie[:])
		rd.bytes(m.Key[:])
		rd.bytes(m.Target[:])
		rd.bytes(m.Sig[:])
	case KindIncoming:
		m.Circuit = rd.u32()
		rd.bytes(m.Key[:])
		m.Limit = rd.limit()
	case KindAccept:
		m.Circuit = rd.u32()
	case KindConnected:
		m.Nonce = rd.u64()
		m.Circuit = rd.u32()
		m.Limit = rd.limit()
	case KindError:
		m.Nonce = rd.u64()
		m.Circuit = rd.u32()
		m.Code = Code(rd.u16())
	case KindClose:
		m.Circuit = rd.u32()
		m.Code = Code(rd.u16())
	}
	if hasAddr(m.Kind) {
		a, _, err := parseAddr(rd.b)
		if err != nil {
			return m, fmt.Errorf("%s: %w", m.Kind, err)
		}
		m.Observed = a
	}
	return m, nil
}

// reader takes fields off a slice whose length was checked before.
type reader struct{ b []byte }

func (r *reader) u16() uint16      { v := binary.BigEndian.Uint16(r.b); r.b = r.b[2:]; return v }
func (r *reader) u32() uint32      { v := binary.BigEndian.Uint32(r.b); r.b = r.b[4:]; return v }
func (r *reader) u64() uint64      { v := binary.BigEndian.Uint64(r.b); r.b = r.b[8:]; return v }
func (r *reader) bytes(dst []byte) { copy(dst, r.b); r.b = r.b[len(dst):] }
func (r *reader) limit() Limit     { l := parseLimit(r.b); r.b = r.b[limitLen:]; return l }

// Signed messages. A RESERVE or CONNECT is signed with the sender's Ed25519
// key over a context string, the kind, the nonce, the cookie (which binds
// the sender's address and the relay's current secret), and for CONNECT
// the target: a signature cannot be replayed from another address, to
// another relay, or after the relay's secret rotated twice.
const sigContext = "go-ipv8 relay v1"

// SignedBytes is what a RESERVE or CONNECT signature covers.
func SignedBytes(m *Msg) []byte {
	b := make([]byte, 0, len(sigContext)+1+8+CookieLen+2*KeyLen)
	b = append(b, sigContext...)
	b = append(b, byte(m.Kind))
	b = binary.BigEndian.AppendUint64(b, m.Nonce)
	b = append(b, m.Cookie[:]...)
	b = append(b, m.Key[:]...)
	if m.Kind == KindConnect {
		b = append(b, m.Target[:]...)
	}
	return b
}
