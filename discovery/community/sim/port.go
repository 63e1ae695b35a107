package sim

import (
	"net/netip"

	"github.com/ipv8/go-ipv8/internal/netsim"
	"github.com/ipv8/go-ipv8/transport"
)

// Port adapts a netsim Conn to transport.Port for community packets only:
// packets reach the handler through the Conn's delivery callback (no read
// goroutine per host, as virtual time requires), and every packet that
// arrives is a community packet in these simulations. STUN and go-ipv8's
// own types are not routed.
type Port struct {
	conn *netsim.Conn
}

// NewPort wraps conn.
func NewPort(conn *netsim.Conn) *Port { return &Port{conn: conn} }

var _ transport.Port = (*Port)(nil)

// LocalAddr is the Conn's address.
func (p *Port) LocalAddr() netip.AddrPort { return p.conn.LocalAddrPort() }

// WriteTo sends b (netsim copies it).
func (p *Port) WriteTo(b []byte, to netip.AddrPort) error {
	_, err := p.conn.WriteToUDPAddrPort(b, to)
	return err
}

// InlineDelivery tells community.Endpoint to handle each packet within the
// delivery callback, before virtual time moves on.
func (p *Port) InlineDelivery() bool { return true }

// HandleType is not routed by this adapter.
func (p *Port) HandleType(byte, transport.PacketHandler) {}

// HandleSTUN is not routed by this adapter.
func (p *Port) HandleSTUN(transport.PacketHandler) {}

// HandleCommunity installs h as the Conn's delivery callback; packets that
// do not start 0x00 0x02 are dropped before it.
func (p *Port) HandleCommunity(h transport.PacketHandler) {
	if h == nil {
		p.conn.SetHandler(nil)
		return
	}
	p.conn.SetHandler(func(pkt []byte, from netip.AddrPort) {
		if len(pkt) >= 2 && pkt[0] == 0x00 && pkt[1] == 0x02 {
			h(pkt, from)
		}
	})
}
