package punch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/ipv8/go-ipv8/nat"
	"github.com/ipv8/go-ipv8/nat/internal/addrwire"
	"github.com/ipv8/go-ipv8/transport"
)

// The hole-punching packets (docs/protocol/nat.md §Hole punching). Every
// packet starts with transport.TypePunch, a kind byte, two reserved bytes
// (zero when sent, ignored when read) and the 16-byte ID of the attempt it
// belongs to (for PING/PONG: of the punched path). Fields are big-endian.
//
// CONNECT, REPLY and SYNC travel over the coordination channel (a relay
// circuit, or any path both peers reach); PROBE and ACK are the punches,
// sent straight to the peer's candidate addresses; PING and PONG keep a
// punched path alive and measure its RTT (over the channel too, to measure
// the relayed path).

// Kind is the second byte of a punch packet.
type Kind uint8

const (
	KindConnect Kind = 1 // initiator → responder: my addresses and NAT
	KindReply   Kind = 2 // responder → initiator: mine
	KindSync    Kind = 3 // initiator → responder: the plan; punch now
	KindProbe   Kind = 4 // a punch
	KindAck     Kind = 5 // the answer to a punch, from where it arrived
	KindPing    Kind = 6 // keepalive/RTT probe of a punched path or channel
	KindPong    Kind = 7 // its answer
	KindCancel  Kind = 8 // the attempt is given up
	maxKind          = KindCancel
)

var kindNames = [...]string{"", "connect", "reply", "sync", "probe", "ack", "ping", "pong", "cancel"}

func (k Kind) String() string {
	if k >= 1 && k <= maxKind {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Sizes on the wire.
const (
	IDLen     = 16
	HeaderLen = 4 + IDLen
	// MaxCandidates bounds the addresses in a CONNECT or REPLY.
	MaxCandidates = 8
)

// ID names a punch attempt, and the path it punched.
type ID [IDLen]byte

// ErrMalformed wraps every parse error.
var ErrMalformed = errors.New("punch: malformed packet")

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, a...)...)
}

// Alloc is how a NAT picks the external port of a new mapping (RFC 4787
// §4.2), as far as a host can tell from outside.
type Alloc uint8

const (
	AllocUnknown    Alloc = 0
	AllocPreserve   Alloc = 1 // the internal port, or one mapping for everyone (EIM)
	AllocSequential Alloc = 2 // each new mapping: the last port plus a small step
	AllocRandom     Alloc = 3
)

func (a Alloc) String() string {
	switch a {
	case AllocPreserve:
		return "preserving"
	case AllocSequential:
		return "sequential"
	case AllocRandom:
		return "random"
	}
	return "unknown"
}

// Traits is what a peer tells the other about its NAT, for the plan.
type Traits struct {
	NoNAT     bool
	Mapping   nat.Behavior
	Filtering nat.Behavior
	Alloc     Alloc
	// Step and LastPort describe sequential allocation: the next mapping
	// gets LastPort+Step (LastPort is the newest mapping seen).
	Step     int16
	LastPort uint16
}

// Info is a CONNECT's or REPLY's body.
type Info struct {
	// Seq numbers the transmissions of a CONNECT; the REPLY echoes it, so
	// that the initiator measures the RTT of the one that was answered.
	Seq uint16
	// Hold is how long the responder held the CONNECT before replying
	// (milliseconds), taken off the measured RTT.
	Hold   uint16
	Traits Traits
	// Candidates are addresses the peer may be reached at, the best first
	// (its public address(es), then private ones).
	Candidates []netip.AddrPort
}

// Strategy is how a pair punches.
type Strategy uint8

const (
	// None: no punch can work (both NATs map per destination and neither is
	// predictable); use the relay.
	None Strategy = 0
	// Direct: both send to the other's known addresses; a peer behind a
	// destination-dependent mapping is learnt from where its packets come.
	Direct Strategy = 1
	// Predict: the peer(s) behind sequential port allocation are probed at
	// the ports they will get next.
	Predict Strategy = 2
	// Birthday: the hard side opens many ports towards the easy side,
	// which probes random ports of the hard side's address.
	Birthday Strategy = 3
)

func (s Strategy) String() string {
	switch s {
	case Direct:
		return "direct"
	case Predict:
		return "predict"
	case Birthday:
		return "birthday"
	}
	return "relay only"
}

// Plan is a SYNC's body: what both sides do.
type Plan struct {
	Strategy Strategy
	// Hard names the side(s) the strategy works on: for Predict, the
	// side(s) whose next ports are predicted; for Birthday, the side that
	// opens Sockets ports. Bit 0: the initiator, bit 1: the responder.
	Hard uint8
	// Probes is the easy side's budget of birthday probes, or the
	// prediction window (ports tried past the last one).
	Probes uint16
	// Sockets is how many ports the hard side opens (Birthday).
	Sockets uint16
	// Duration bounds the punching (milliseconds).
	Duration uint32
	// Interval is the period of repeated probes (milliseconds).
	Interval uint16
}

// Hard-side bits of Plan.Hard.
const (
	HardInitiator uint8 = 1
	HardResponder uint8 = 2
)

// Packet is a punch packet, decoded. Info is set for CONNECT and REPLY,
// Plan for SYNC, Seq for PROBE, ACK, PING and PONG, Reason for CANCEL.
type Packet struct {
	Kind   Kind
	Flags  byte
	ID     ID
	Info   Info
	Plan   Plan
	Seq    uint32
	Reason uint8
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

// FlagNominate, in a PROBE or ACK, marks the pair of addresses the
// initiator chose: the responder takes the path a nominating PROBE arrived
// over (so that both sides use the same one when several were punched)
// and echoes the flag in its ACK.
const FlagNominate = 1

// AppendHeader appends the header of a packet of kind k for attempt id.
func AppendHeader(b []byte, k Kind, id ID, flags byte) []byte {
	b = append(b, transport.TypePunch, byte(k), flags, 0)
	return append(b, id[:]...)
}

// AppendSeq appends a PROBE, ACK, PING or PONG (the packets sent in
// numbers: no Packet value needed).
func AppendSeq(b []byte, k Kind, id ID, seq uint32) []byte {
	return AppendSeqFlags(b, k, id, seq, 0)
}

// AppendSeqFlags is AppendSeq with header flags.
func AppendSeqFlags(b []byte, k Kind, id ID, seq uint32, flags byte) []byte {
	return binary.BigEndian.AppendUint32(AppendHeader(b, k, id, flags), seq)
}

const (
	infoFixed = 2 + 2 + 4 + 2 + 2 + 1 // seq, hold, traits (4), step, last port, count
	planLen   = 1 + 1 + 2 + 2 + 4 + 2
)

// Append encodes p after b.
func (p *Packet) Append(b []byte) []byte {
	b = AppendHeader(b, p.Kind, p.ID, p.Flags)
	switch p.Kind {
	case KindConnect, KindReply:
		in := &p.Info
		b = binary.BigEndian.AppendUint16(b, in.Seq)
		b = binary.BigEndian.AppendUint16(b, in.Hold)
		flags := byte(0)
		if in.Traits.NoNAT {
			flags = 1
		}
		b = append(b, flags, byte(in.Traits.Mapping), byte(in.Traits.Filtering), byte(in.Traits.Alloc))
		b = binary.BigEndian.AppendUint16(b, uint16(in.Traits.Step))
		b = binary.BigEndian.AppendUint16(b, in.Traits.LastPort)
		n := min(len(in.Candidates), MaxCandidates)
		b = append(b, byte(n))
		for _, a := range in.Candidates[:n] {
			b = appendAddr(b, a)
		}
	case KindSync:
		pl := &p.Plan
		b = append(b, byte(pl.Strategy), pl.Hard)
		b = binary.BigEndian.AppendUint16(b, pl.Probes)
		b = binary.BigEndian.AppendUint16(b, pl.Sockets)
		b = binary.BigEndian.AppendUint32(b, pl.Duration)
		b = binary.BigEndian.AppendUint16(b, pl.Interval)
	case KindProbe, KindAck, KindPing, KindPong:
		b = binary.BigEndian.AppendUint32(b, p.Seq)
	case KindCancel:
		b = append(b, p.Reason)
	}
	return b
}

// Parse decodes a punch packet. Bytes after the fields are ignored (later
// versions may add some).
func Parse(pkt []byte) (Packet, error) {
	var p Packet
	if len(pkt) < HeaderLen || pkt[0] != transport.TypePunch {
		return p, malformed("not a punch packet")
	}
	p.Kind = Kind(pkt[1])
	p.Flags = pkt[2]
	copy(p.ID[:], pkt[4:HeaderLen])
	b := pkt[HeaderLen:]
	switch p.Kind {
	case KindConnect, KindReply:
		if len(b) < infoFixed {
			return p, malformed("%s: %d bytes", p.Kind, len(b))
		}
		in := &p.Info
		in.Seq = binary.BigEndian.Uint16(b)
		in.Hold = binary.BigEndian.Uint16(b[2:])
		in.Traits.NoNAT = b[4]&1 != 0
		in.Traits.Mapping = nat.Behavior(b[5])
		in.Traits.Filtering = nat.Behavior(b[6])
		in.Traits.Alloc = Alloc(b[7])
		if in.Traits.Mapping > nat.AddressAndPortDependent || in.Traits.Filtering > nat.AddressAndPortDependent || in.Traits.Alloc > AllocRandom {
			return p, malformed("%s: unknown NAT behaviour", p.Kind)
		}
		in.Traits.Step = int16(binary.BigEndian.Uint16(b[8:]))
		in.Traits.LastPort = binary.BigEndian.Uint16(b[10:])
		n := int(b[12])
		if n > MaxCandidates {
			return p, malformed("%s: %d candidates, at most %d", p.Kind, n, MaxCandidates)
		}
		b = b[infoFixed:]
		in.Candidates = make([]netip.AddrPort, 0, n)
		for range n {
			a, k, err := parseAddr(b)
			if err != nil {
				return p, fmt.Errorf("%s: %w", p.Kind, err)
			}
			in.Candidates = append(in.Candidates, a)
			b = b[k:]
		}
	case KindSync:
		if len(b) < planLen {
			return p, malformed("sync: %d bytes", len(b))
		}
		pl := &p.Plan
		pl.Strategy = Strategy(b[0])
		pl.Hard = b[1]
		if pl.Strategy > Birthday || pl.Hard > HardInitiator|HardResponder {
			return p, malformed("sync: strategy %d, hard side %d", b[0], b[1])
		}
		pl.Probes = binary.BigEndian.Uint16(b[2:])
		pl.Sockets = binary.BigEndian.Uint16(b[4:])
		pl.Duration = binary.BigEndian.Uint32(b[6:])
		pl.Interval = binary.BigEndian.Uint16(b[10:])
	case KindProbe, KindAck, KindPing, KindPong:
		if len(b) < 4 {
			return p, malformed("%s: %d bytes", p.Kind, len(b))
		}
		p.Seq = binary.BigEndian.Uint32(b)
	case KindCancel:
		if len(b) < 1 {
			return p, malformed("cancel: no reason")
		}
		p.Reason = b[0]
	default:
		return p, malformed("kind %d", pkt[1])
	}
	return p, nil
}
