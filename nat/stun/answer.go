package stun

import (
	"net/netip"
)

// Software is the SOFTWARE attribute go-ipv8 puts in its responses.
const Software = "go-ipv8"

// reply is one datagram a server sends in answer to a request.
type reply struct {
	pkt []byte
	to  netip.AddrPort
	// changeIP and changePort select the socket to send from (RFC 5780
	// CHANGE-REQUEST); a single-address server never sets them.
	changeIP, changePort bool
}

// answer builds the reply to pkt, received from `from` on the socket s.local
// of a server with addresses s. ok is false when pkt is to be dropped (not a
// Binding request, or malformed).
func answer(pkt []byte, from netip.AddrPort, s serverAddrs, software string) (reply, bool) {
	req, err := ParseRequest(pkt)
	if err != nil {
		return reply{}, false
	}
	to := from
	if req.ResponsePort != 0 {
		to = netip.AddrPortFrom(from.Addr(), req.ResponsePort)
	}
	if len(req.Unknown) > 0 {
		return reply{pkt: appendError(nil, req.TxID, 420, "Unknown Attribute", req.Unknown, software), to: from}, true
	}
	changeIP, changePort := req.Change&ChangeIP != 0, req.Change&ChangePort != 0
	if (changeIP || changePort) && !s.alt.IsValid() {
		// RFC 5780 §6.1: a server without an alternate address answers a
		// CHANGE-REQUEST with 420 listing it, so the client knows.
		return reply{pkt: appendError(nil, req.TxID, 420, "Unknown Attribute", []uint16{attrChangeRequest}, software), to: from}, true
	}
	origin := s.socket(changeIP, changePort)
	r := response{txid: req.TxID, mapped: from, origin: origin, other: s.otherOf(changeIP, changePort)}
	return reply{pkt: appendSuccess(nil, r, software), to: to, changeIP: changeIP, changePort: changePort}, true
}

// serverAddrs are the addresses a server answers on. local is the socket
// the request came in on; primary and alt are the server's two
// addresses (alt zero for a single-address server). RFC 5780 uses
// four sockets: {primary IP, alt IP} × {primary port, alt port}.
type serverAddrs struct {
	local, primary, alt netip.AddrPort
}

// socket returns the address of the socket that answers, after applying
// the change flags to local.
func (s serverAddrs) socket(changeIP, changePort bool) netip.AddrPort {
	if !s.alt.IsValid() {
		return s.local
	}
	ip, port := s.local.Addr(), s.local.Port()
	if changeIP {
		ip = s.flipIP(ip)
	}
	if changePort {
		port = s.flipPort(port)
	}
	return netip.AddrPortFrom(ip, port)
}

// otherOf is the OTHER-ADDRESS a response from the socket chosen by the
// flags carries: the server's alternate IP with the other port. From the
// primary IP's sockets that is the socket diagonal to it (RFC 5780 §7.4:
// where a change-IP-and-port answer would come from). From the alternate
// IP's sockets it keeps the alternate IP, as coturn does, because clients
// such as turnutils_natdiscovery send mapping test III to the
// OTHER-ADDRESS of test II's answer (which comes from the alternate IP);
// the diagonal would send them back to the primary IP and make an
// address-dependent mapping look address-and-port-dependent.
func (s serverAddrs) otherOf(changeIP, changePort bool) netip.AddrPort {
	if !s.alt.IsValid() {
		return netip.AddrPort{}
	}
	at := s.socket(changeIP, changePort)
	return netip.AddrPortFrom(s.alt.Addr(), s.flipPort(at.Port()))
}

func (s serverAddrs) flipIP(ip netip.Addr) netip.Addr {
	if ip == s.primary.Addr() {
		return s.alt.Addr()
	}
	return s.primary.Addr()
}

func (s serverAddrs) flipPort(p uint16) uint16 {
	if p == s.primary.Port() {
		return s.alt.Port()
	}
	return s.primary.Port()
}
