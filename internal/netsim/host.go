package netsim

import (
	"fmt"
	"net/netip"
)

// Ephemeral ports (port 0 in ListenUDP) are drawn from this range, as on
// most systems (IANA's dynamic ports).
const (
	ephemeralMin = 49152
	ephemeralMax = 65535
)

// Host is a machine with one network interface: an address in a realm
// (the internet or a NAT's inside) and an access link.
type Host struct {
	n     *Network
	id    uint64
	ip    netip.Addr
	realm *realm
	gen   uint32 // bumped when the address changes: packets in flight to the old one are dropped
	link  Link
	up    pipe
	down  pipe
	conns map[uint16]*Conn
}

// NewHost adds a host with a public address. It panics if ip is invalid or
// already taken: the topology of a test is the test's own bug.
func (n *Network) NewHost(ip netip.Addr, l Link) *Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addHost(n.internet, ip, l)
}

func (n *Network) addHost(r *realm, ip netip.Addr, l Link) *Host {
	ip = checkAddr(r, ip, "NewHost")
	h := &Host{n: n, id: n.newID(), ip: ip, realm: r, link: l}
	n.seedStream(&h.up.rng, 2*h.id)
	n.seedStream(&h.down.rng, 2*h.id+1)
	h.down.down = true
	r.members[ip] = member{host: h}
	n.hosts = append(n.hosts, h)
	return h
}

// checkAddr validates ip as a new address in r.
func checkAddr(r *realm, ip netip.Addr, op string) netip.Addr {
	if !ip.IsValid() {
		panic(fmt.Sprintf("netsim: %s: invalid address", op))
	}
	ip = ip.Unmap()
	if _, taken := r.members[ip]; taken {
		panic(fmt.Sprintf("netsim: %s: address %s is already in use in %s", op, ip, r))
	}
	return ip
}

func (r *realm) String() string {
	if r.nat == nil {
		return "the internet"
	}
	return "the realm behind NAT " + r.nat.ip.String()
}

// Addr is the host's current address.
func (h *Host) Addr() netip.Addr {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	return h.ip
}

// Network is the network the host belongs to.
func (h *Host) Network() *Network { return h.n }

// SetLink changes the host's access link; packets already in flight keep
// the fate they were given.
func (h *Host) SetLink(l Link) {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	h.link = l
}

// ListenUDP opens a Conn on port (0 picks a free ephemeral port).
func (h *Host) ListenUDP(port uint16) (*Conn, error) {
	n := h.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrNetworkClosed
	}
	if port == 0 {
		port = h.ephemeralPort()
		if port == 0 {
			return nil, fmt.Errorf("netsim: listen on %s: no free ephemeral port: %w", h.ip, ErrPortInUse)
		}
	} else if h.conns[port] != nil {
		return nil, fmt.Errorf("netsim: listen on %s: %w", netip.AddrPortFrom(h.ip, port), ErrPortInUse)
	}
	c := newConn(h, port)
	if h.conns == nil {
		h.conns = make(map[uint16]*Conn, 1)
	}
	h.conns[port] = c
	return c, nil
}

// ephemeralPort picks a free port at random from the ephemeral range, or
// returns 0 when all are taken. Callers hold n.mu.
func (h *Host) ephemeralPort() uint16 {
	const span = ephemeralMax - ephemeralMin + 1
	start := h.n.rng.Uint64() % span
	for i := range uint64(span) {
		p := uint16(ephemeralMin + (start+i)%span)
		if h.conns[p] == nil {
			return p
		}
	}
	return 0
}

// SetAddr gives the host a new address in the same realm (a new DHCP
// lease, a new public IP). Open Conns keep working and send from the new
// address; packets in flight to the old address are dropped (DropNoRoute).
// It panics if ip is taken.
func (h *Host) SetAddr(ip netip.Addr) {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	h.moveTo(h.realm, ip)
}

// MoveBehind moves the host into the realm behind nat with address ip (a
// laptop joining another Wi-Fi); a nil nat moves it onto the public
// internet. Open Conns keep working, as with SetAddr.
func (h *Host) MoveBehind(nat *NAT, ip netip.Addr) {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	r := h.n.internet
	if nat != nil {
		r = nat.inside
	}
	h.moveTo(r, ip)
}

func (h *Host) moveTo(r *realm, ip netip.Addr) {
	if r == h.realm && ip.Unmap() == h.ip {
		return
	}
	ip = checkAddr(r, ip, "move host")
	delete(h.realm.members, h.ip)
	r.members[ip] = member{host: h}
	h.realm = r
	h.ip = ip
	h.gen++
}

func (h *Host) String() string {
	return "netsim.Host(" + h.Addr().String() + ")"
}
