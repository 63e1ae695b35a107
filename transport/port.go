package transport

import "net/netip"

// PacketHandler receives one packet from the host's port. It runs on the
// port's read goroutine: it must not block, and pkt is valid only during the
// call (copy what you keep).
type PacketHandler func(pkt []byte, from netip.AddrPort)

// Port is the host's one UDP port as its subsystems see it: Noise sessions,
// STUN, hole punching, relaying and community messages all send from it, so
// a NAT sees one mapping, and each registers for the packets that are its
// own. transport/udp implements it over kernel sockets or any PacketConn
// (such as internal/netsim).
//
// Packets are told apart by their first byte:
//
//	0x00–0x03 with the STUN magic cookie at bytes 4–7    STUN (HandleSTUN)
//	0x00 0x02 (no cookie)                                IPv8 community packets (HandleCommunity)
//	0x04–0x3F                                            go-ipv8's own types (HandleType, see Type*)
//	0x40–0xFF                                            QUIC (quic-go's socket)
type Port interface {
	// LocalAddr is the address the port is bound to.
	LocalAddr() netip.AddrPort
	// WriteTo sends one packet from the port.
	WriteTo(b []byte, to netip.AddrPort) error
	// HandleType registers h for packets whose first byte is t
	// (TypeMin ≤ t ≤ TypeMax); nil removes the handler.
	HandleType(t byte, h PacketHandler)
	// HandleSTUN registers h for STUN messages; nil removes it.
	HandleSTUN(h PacketHandler)
	// HandleCommunity registers h for IPv8 community packets; nil removes it.
	HandleCommunity(h PacketHandler)
}

// The first bytes of go-ipv8's own packet types, specified in
// docs/PROTOCOL.md. Unregistered types are dropped and counted.
const (
	TypeMin = 0x04
	TypeMax = 0x3F

	TypeNoiseInitiation = 0x04 // Noise handshake, first message
	TypeNoiseResponse   = 0x05 // Noise handshake, second (and XX third) message
	TypeNoiseCookie     = 0x06 // stateless cookie reply under load
	TypeNoiseData       = 0x07 // an encrypted transport packet of a session
	TypeRelay           = 0x08 // a datagram relayed for two peers (nat)
	TypePunch           = 0x09 // a hole-punching probe (nat)
	TypeNATProbe        = 0x0A // mapping-lifetime and reachability probes (nat)
)
