package wire

import (
	"fmt"
	"net/netip"
)

// Message IDs of the discovery protocol (py-ipv8's Community).
const (
	MsgIntroductionRequest     = 246 // signed, ipv4 fields
	MsgIntroductionResponse    = 245 // signed, ipv4 fields
	MsgPunctureRequest         = 250 // unsigned, ipv4 fields
	MsgPuncture                = 249 // signed, ipv4 fields
	MsgNewIntroductionRequest  = 234 // signed, ip_address fields
	MsgNewIntroductionResponse = 233 // signed, ip_address fields
	MsgNewPunctureRequest      = 232 // unsigned, ip_address fields
	MsgNewPuncture             = 231 // signed, ip_address fields
)

// IsSignedDiscovery reports whether a discovery message ID is signed (all
// but the puncture requests); ok is false for IDs that are not discovery
// messages.
func IsSignedDiscovery(id byte) (signed, ok bool) {
	switch id {
	case MsgIntroductionRequest, MsgIntroductionResponse, MsgPuncture,
		MsgNewIntroductionRequest, MsgNewIntroductionResponse, MsgNewPuncture:
		return true, true
	case MsgPunctureRequest, MsgNewPunctureRequest:
		return false, true
	}
	return false, false
}

// ConnType is py-ipv8's connection type, the top two bits of the flags.
type ConnType uint8

// Connection types.
const (
	ConnUnknown      ConnType = 0    // bits 00
	ConnPublic       ConnType = 0x80 // bits 10
	ConnSymmetricNAT ConnType = 0xC0 // bits 11
)

// Flag bits of the introduction messages (the first 'bits' argument is 0x80).
const (
	flagConnMask = 0xC0

	reqSupportsNewStyle = 0x20
	reqAdvice           = 0x01

	respSupportsNewStyle      = 0x10
	respIntroSupportsNewStyle = 0x08
	respPeerLimitReached      = 0x04

	newRespIntroSupportsNewStyle = 0x80
)

// IntroductionRequest asks the receiver to answer and to introduce the
// sender to one of its peers (messages 246 and 234).
type IntroductionRequest struct {
	// Destination is the receiver's address as the sender sees it.
	Destination netip.AddrPort
	// SourceLAN and SourceWAN are the sender's own addresses.
	SourceLAN, SourceWAN netip.AddrPort
	ConnType             ConnType
	SupportsNewStyle     bool
	// Advice asks for an introduction. py-ipv8 sets it (bit 0x01), inverts
	// it when decoding, and ignores it; go-ipv8 decodes it as sent and
	// ignores it too, because py-ipv8's new-style requests leave it clear.
	Advice     bool
	Identifier uint16
	// Extra carries piggybacked bytes (go-ipv8 puts its Advert here).
	Extra []byte
}

// Append appends the payload in the IPv4 form (246), or in the IPv6-capable
// form (234) when newStyle is set.
func (m *IntroductionRequest) Append(b []byte, newStyle bool) ([]byte, error) {
	w := NewWriter(b)
	flags := byte(m.ConnType) & flagConnMask
	if m.SupportsNewStyle {
		flags |= reqSupportsNewStyle
	}
	if m.Advice {
		flags |= reqAdvice
	}
	if newStyle {
		w.IPAddress(m.Destination)
		w.IPAddress(m.SourceLAN)
		w.IPAddress(m.SourceWAN)
		w.Uint16(m.Identifier)
		w.Uint8(flags)
	} else {
		w.IPv4(m.Destination)
		w.IPv4(m.SourceLAN)
		w.IPv4(m.SourceWAN)
		w.Uint8(flags)
		w.Uint16(m.Identifier)
	}
	w.Raw(m.Extra)
	return w.Bytes()
}

// ParseIntroductionRequest reads the payload of message 246, or of 234
// when newStyle is set. Extra aliases b.
func ParseIntroductionRequest(b []byte, newStyle bool) (IntroductionRequest, error) {
	var m IntroductionRequest
	var flags byte
	r := NewReader(b)
	if newStyle {
		m.Destination = r.IPAddress()
		m.SourceLAN = r.IPAddress()
		m.SourceWAN = r.IPAddress()
		m.Identifier = r.Uint16()
		flags = r.Uint8()
	} else {
		m.Destination = r.IPv4()
		m.SourceLAN = r.IPv4()
		m.SourceWAN = r.IPv4()
		flags = r.Uint8()
		m.Identifier = r.Uint16()
	}
	m.Extra = r.Raw()
	if err := r.Done(); err != nil {
		return IntroductionRequest{}, fmt.Errorf("introduction-request: %w", err)
	}
	m.ConnType = ConnType(flags & flagConnMask)
	m.SupportsNewStyle = newStyle || flags&reqSupportsNewStyle != 0
	m.Advice = flags&reqAdvice != 0
	return m, nil
}

// IntroductionResponse answers an IntroductionRequest and introduces the
// requester to a peer (messages 245 and 233).
type IntroductionResponse struct {
	// Destination is the requester's address as the responder saw it: what
	// the requester learns its WAN address from.
	Destination          netip.AddrPort
	SourceLAN, SourceWAN netip.AddrPort
	// LANIntroduction and WANIntroduction are the introduced peer's
	// addresses; both zero when nobody was introduced.
	LANIntroduction, WANIntroduction netip.AddrPort
	ConnType                         ConnType
	SupportsNewStyle                 bool
	IntroSupportsNewStyle            bool
	PeerLimitReached                 bool
	Identifier                       uint16
	Extra                            []byte
}

// Append appends the payload in the IPv4 form (245), or the IPv6-capable
// form (233) when newStyle is set. The new form has no connection type,
// supports-new-style or peer-limit flags.
func (m *IntroductionResponse) Append(b []byte, newStyle bool) ([]byte, error) {
	w := NewWriter(b)
	if newStyle {
		w.IPAddress(m.Destination)
		w.IPAddress(m.SourceLAN)
		w.IPAddress(m.SourceWAN)
		w.IPAddress(m.LANIntroduction)
		w.IPAddress(m.WANIntroduction)
		w.Uint16(m.Identifier)
		var flags byte
		if m.IntroSupportsNewStyle {
			flags |= newRespIntroSupportsNewStyle
		}
		w.Uint8(flags)
	} else {
		w.IPv4(m.Destination)
		w.IPv4(m.SourceLAN)
		w.IPv4(m.SourceWAN)
		w.IPv4(m.LANIntroduction)
		w.IPv4(m.WANIntroduction)
		flags := byte(m.ConnType) & flagConnMask
		if m.SupportsNewStyle {
			flags |= respSupportsNewStyle
		}
		if m.IntroSupportsNewStyle {
			flags |= respIntroSupportsNewStyle
		}
		if m.PeerLimitReached {
			flags |= respPeerLimitReached
		}
		w.Uint8(flags)
		w.Uint16(m.Identifier)
	}
	w.Raw(m.Extra)
	return w.Bytes()
}

// ParseIntroductionResponse reads the payload of message 245, or of 233
// when newStyle is set. Extra aliases b.
func ParseIntroductionResponse(b []byte, newStyle bool) (IntroductionResponse, error) {
	var m IntroductionResponse
	r := NewReader(b)
	var flags byte
	if newStyle {
		m.Destination = r.IPAddress()
		m.SourceLAN = r.IPAddress()
		m.SourceWAN = r.IPAddress()
		m.LANIntroduction = r.IPAddress()
		m.WANIntroduction = r.IPAddress()
		m.Identifier = r.Uint16()
		flags = r.Uint8()
	} else {
		m.Destination = r.IPv4()
		m.SourceLAN = r.IPv4()
		m.SourceWAN = r.IPv4()
		m.LANIntroduction = r.IPv4()
		m.WANIntroduction = r.IPv4()
		flags = r.Uint8()
		m.Identifier = r.Uint16()
	}
	m.Extra = r.Raw()
	if err := r.Done(); err != nil {
		return IntroductionResponse{}, fmt.Errorf("introduction-response: %w", err)
	}
	if newStyle {
		m.SupportsNewStyle = true
		m.IntroSupportsNewStyle = flags&newRespIntroSupportsNewStyle != 0
	} else {
		m.ConnType = ConnType(flags & flagConnMask)
		m.SupportsNewStyle = flags&respSupportsNewStyle != 0
		m.IntroSupportsNewStyle = flags&respIntroSupportsNewStyle != 0
		m.PeerLimitReached = flags&respPeerLimitReached != 0
	}
	return m, nil
}

// PunctureRequest asks the receiver to send a Puncture to a walker, so that
// the walker's next packet passes the receiver's NAT (messages 250, 232;
// unsigned).
type PunctureRequest struct {
	LANWalker, WANWalker netip.AddrPort
	Identifier           uint16
}

// Append appends the payload (250, or 232 when newStyle is set).
func (m *PunctureRequest) Append(b []byte, newStyle bool) ([]byte, error) {
	return appendAddrPair(b, m.LANWalker, m.WANWalker, m.Identifier, newStyle)
}

// ParsePunctureRequest reads the payload of 250, or of 232 when newStyle.
func ParsePunctureRequest(b []byte, newStyle bool) (PunctureRequest, error) {
	lan, wan, id, err := parseAddrPair(b, newStyle)
	if err != nil {
		return PunctureRequest{}, fmt.Errorf("puncture-request: %w", err)
	}
	return PunctureRequest{LANWalker: lan, WANWalker: wan, Identifier: id}, nil
}

// Puncture is the packet that opens the sender's NAT towards a walker
// (messages 249, 231; signed).
type Puncture struct {
	SourceLAN, SourceWAN netip.AddrPort
	Identifier           uint16
}

// Append appends the payload (249, or 231 when newStyle is set).
func (m *Puncture) Append(b []byte, newStyle bool) ([]byte, error) {
	return appendAddrPair(b, m.SourceLAN, m.SourceWAN, m.Identifier, newStyle)
}

// ParsePuncture reads the payload of 249, or of 231 when newStyle.
func ParsePuncture(b []byte, newStyle bool) (Puncture, error) {
	lan, wan, id, err := parseAddrPair(b, newStyle)
	if err != nil {
		return Puncture{}, fmt.Errorf("puncture: %w", err)
	}
	return Puncture{SourceLAN: lan, SourceWAN: wan, Identifier: id}, nil
}

func appendAddrPair(b []byte, lan, wan netip.AddrPort, id uint16, newStyle bool) ([]byte, error) {
	w := NewWriter(b)
	if newStyle {
		w.IPAddress(lan)
		w.IPAddress(wan)
	} else {
		w.IPv4(lan)
		w.IPv4(wan)
	}
	w.Uint16(id)
	return w.Bytes()
}

func parseAddrPair(b []byte, newStyle bool) (lan, wan netip.AddrPort, id uint16, err error) {
	r := NewReader(b)
	if newStyle {
		lan = r.IPAddress()
		wan = r.IPAddress()
	} else {
		lan = r.IPv4()
		wan = r.IPv4()
	}
	id = r.Uint16()
	if err = r.Done(); err != nil {
		return netip.AddrPort{}, netip.AddrPort{}, 0, err
	}
	return lan, wan, id, nil
}
