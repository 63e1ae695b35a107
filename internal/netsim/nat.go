package netsim

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"time"
)

// Behavior is a NAT's mapping or filtering behaviour (RFC 4787 sections 4.1
// and 5). The zero value picks the NATConfig default.
type Behavior uint8

const (
	// EndpointIndependent: one mapping per internal ip:port, towards every
	// destination (mapping); inbound from anyone to a mapped port (filtering).
	EndpointIndependent Behavior = iota + 1
	// AddressDependent: one mapping per internal ip:port and destination IP;
	// inbound only from IPs the mapping sent to.
	AddressDependent
	// AddressAndPortDependent: one mapping per internal ip:port and
	// destination ip:port; inbound only from ip:ports the mapping sent to.
	AddressAndPortDependent
)

func (b Behavior) String() string {
	switch b {
	case EndpointIndependent:
		return "endpoint-independent"
	case AddressDependent:
		return "address-dependent"
	case AddressAndPortDependent:
		return "address-and-port-dependent"
	}
	return fmt.Sprintf("Behavior(%d)", uint8(b))
}

// PortAllocation is how a NAT picks the external port of a new mapping
// (RFC 4787 section 4.2). The zero value is PortPreserve.
type PortAllocation uint8

const (
	// PortPreserve uses the internal port when it is free, else the next
	// free port above it.
	PortPreserve PortAllocation = iota + 1
	// PortSequential uses the next free port after the last one allocated.
	PortSequential
	// PortRandom uses a random free port.
	PortRandom
)

// External ports a NAT allocates.
const (
	natPortMin = 1024
	natPortMax = 65535
	// natSequentialStart is where PortSequential starts counting.
	natSequentialStart = 20000
)

// DefaultMappingTimeout is RFC 4787's minimum idle timeout (REQ-5), used
// when NATConfig.MappingTimeout is zero.
const DefaultMappingTimeout = 2 * time.Minute

// NATConfig is the behaviour of a NAT.
type NATConfig struct {
	Mapping   Behavior // default EndpointIndependent
	Filtering Behavior // default AddressAndPortDependent (a typical home router)
	// MappingTimeout is how long a mapping lives after its last outbound
	// packet (and inbound, with InboundRefresh). 0 means
	// DefaultMappingTimeout; negative means mappings never expire.
	MappingTimeout time.Duration
	// InboundRefresh makes inbound packets that pass the filter refresh the
	// mapping too.
	InboundRefresh bool
	PortAllocation PortAllocation // default PortPreserve
	// Hairpinning delivers packets from inside to the NAT's own public
	// address back inside; without it they are dropped (DropHairpin).
	Hairpinning bool
}

func (c *NATConfig) fill() {
	if c.Mapping == 0 {
		c.Mapping = EndpointIndependent
	}
	if c.Filtering == 0 {
		c.Filtering = AddressAndPortDependent
	}
	if c.MappingTimeout == 0 {
		c.MappingTimeout = DefaultMappingTimeout
	}
	if c.PortAllocation == 0 {
		c.PortAllocation = PortPreserve
	}
}

// NAT is a network address translator between a private realm (its
// inside: hosts and further NATs) and the realm it sits in (the internet,
// or the inside of an outer NAT). It has one public address and one WAN
// link, shared by everything behind it.
type NAT struct {
	n      *Network
	id     uint64
	ip     netip.Addr
	parent *realm
	inside *realm
	gen    uint32
	cfg    NATConfig
	link   Link
	up     pipe
	down   pipe
	rng    rand.PCG

	maps       map[mapKey]*mapping
	byExt      map[uint16]*mapping
	used       []uint64 // bitmap of ports in byExt, built once the NAT is busy (see allocPort)
	nextPort   uint32   // PortSequential's next candidate
	sinceSweep int      // new mappings since the last sweep
	afterSweep int      // mappings left by the last sweep
}

// busyNAT is the number of mappings from which a NAT keeps a port bitmap:
// below it a linear scan for a free port is cheap, above it the bitmap
// (8 KiB) finds one 64 ports at a time.
const busyNAT = 128

// mapKey names a mapping: the internal endpoint and, for dependent mapping
// behaviours, the destination (port zeroed for AddressDependent).
type mapKey struct {
	internal netip.AddrPort
	dest     netip.AddrPort
}

type mapping struct {
	key      mapKey
	ext      uint16
	lastUsed time.Duration
	// allowed holds the remotes the mapping sent to, for dependent
	// filtering (ports zeroed for AddressDependent).
	allowed map[netip.AddrPort]struct{}
}

// NewNAT adds a NAT whose public address ip is on the internet, with WAN
// link l.
func (n *Network) NewNAT(ip netip.Addr, cfg NATConfig, l Link) *NAT {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addNAT(n.internet, ip, cfg, l)
}

// NewNAT adds a NAT behind this one (carrier-grade NAT): its outside
// address ip is a private address of this NAT's realm.
func (nat *NAT) NewNAT(ip netip.Addr, cfg NATConfig, l Link) *NAT {
	nat.n.mu.Lock()
	defer nat.n.mu.Unlock()
	return nat.n.addNAT(nat.inside, ip, cfg, l)
}

func (n *Network) addNAT(r *realm, ip netip.Addr, cfg NATConfig, l Link) *NAT {
	ip = checkAddr(r, ip, "NewNAT")
	cfg.fill()
	nat := &NAT{
		n:        n,
		id:       n.newID(),
		ip:       ip,
		parent:   r,
		cfg:      cfg,
		link:     l,
		maps:     make(map[mapKey]*mapping),
		byExt:    make(map[uint16]*mapping),
		nextPort: natSequentialStart,
	}
	nat.inside = &realm{nat: nat, members: make(map[netip.Addr]member)}
	n.seedStream(&nat.up.rng, 2*nat.id)
	n.seedStream(&nat.down.rng, 2*nat.id+1)
	nat.down.down = true
	n.seedStream(&nat.rng, 1<<63|nat.id)
	r.members[ip] = member{nat: nat}
	return nat
}

// NewHost adds a host behind the NAT with private address ip and access
// link l (its link to the NAT).
func (nat *NAT) NewHost(ip netip.Addr, l Link) *Host {
	nat.n.mu.Lock()
	defer nat.n.mu.Unlock()
	return nat.n.addHost(nat.inside, ip, l)
}

// Addr is the NAT's public (outside) address.
func (nat *NAT) Addr() netip.Addr {
	nat.n.mu.Lock()
	defer nat.n.mu.Unlock()
	return nat.ip
}

// Config is the NAT's behaviour, with defaults filled in.
func (nat *NAT) Config() NATConfig { return nat.cfg }

// SetLink changes the NAT's WAN link.
func (nat *NAT) SetLink(l Link) {
	nat.n.mu.Lock()
	defer nat.n.mu.Unlock()
	nat.link = l
}

// SetAddr gives the NAT a new public address (the ISP renumbered it): all
// mappings are forgotten and packets in flight to the old address are
// dropped.
func (nat *NAT) SetAddr(ip netip.Addr) {
	nat.n.mu.Lock()
	defer nat.n.mu.Unlock()
	if ip.Unmap() == nat.ip {
		return
	}
	ip = checkAddr(nat.parent, ip, "NAT.SetAddr")
	delete(nat.parent.members, nat.ip)
	nat.parent.members[ip] = member{nat: nat}
	nat.ip = ip
	nat.gen++
	nat.flush()
}

// FlushMappings forgets every mapping (a NAT reboot or rebinding): the
// next outbound packet of each flow gets a new mapping, and inbound
// packets to old mappings are dropped.
func (nat *NAT) FlushMappings() {
	nat.n.mu.Lock()
	defer nat.n.mu.Unlock()
	nat.flush()
}

func (nat *NAT) flush() {
	clear(nat.maps)
	clear(nat.byExt)
	nat.used = nil
	nat.sinceSweep, nat.afterSweep = 0, 0
}

// Mappings is the number of live mappings.
func (nat *NAT) Mappings() int {
	nat.n.mu.Lock()
	defer nat.n.mu.Unlock()
	now := nat.n.now()
	live := 0
	for _, m := range nat.maps {
		if !nat.expired(m, now) {
			live++
		}
	}
	return live
}

// ExternalAddr reports the public ip:port of the live mapping that an
// outbound packet from internal to dest would use, if there is one. Tests
// use it to check mappings without sending.
func (nat *NAT) ExternalAddr(internal, dest netip.AddrPort) (netip.AddrPort, bool) {
	nat.n.mu.Lock()
	defer nat.n.mu.Unlock()
	m := nat.maps[nat.keyFor(internal, dest)]
	if m == nil || nat.expired(m, nat.n.now()) {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(nat.ip, m.ext), true
}

func (nat *NAT) keyFor(src, dst netip.AddrPort) mapKey {
	k := mapKey{internal: src}
	switch nat.cfg.Mapping {
	case AddressDependent:
		k.dest = netip.AddrPortFrom(dst.Addr(), 0)
	case AddressAndPortDependent:
		k.dest = dst
	}
	return k
}

func (nat *NAT) expired(m *mapping, now time.Duration) bool {
	return nat.cfg.MappingTimeout > 0 && now-m.lastUsed >= nat.cfg.MappingTimeout
}

func (nat *NAT) add(m *mapping) {
	nat.maps[m.key] = m
	nat.byExt[m.ext] = m
	if nat.used != nil {
		nat.used[m.ext/64] |= 1 << (m.ext % 64)
	}
}

func (nat *NAT) remove(m *mapping) {
	delete(nat.maps, m.key)
	delete(nat.byExt, m.ext)
	if nat.used != nil {
		nat.used[m.ext/64] &^= 1 << (m.ext % 64)
	}
}

// outbound translates the source of a packet leaving the realm: it finds
// or makes the mapping, refreshes it and records the destination for
// filtering. Callers hold n.mu.
func (nat *NAT) outbound(src, dst netip.AddrPort, now time.Duration) (netip.AddrPort, DropReason) {
	key := nat.keyFor(src, dst)
	m := nat.maps[key]
	if m != nil && nat.expired(m, now) {
		nat.remove(m)
		m = nil
	}
	if m == nil {
		nat.maybeSweep(now)
		ext, ok := nat.allocPort(src.Port(), now)
		if !ok {
			return netip.AddrPort{}, DropNATPortsExhausted
		}
		m = &mapping{key: key, ext: ext}
		nat.add(m)
	}
	m.lastUsed = now
	switch nat.cfg.Filtering {
	case AddressDependent:
		m.allow(netip.AddrPortFrom(dst.Addr(), 0))
	case AddressAndPortDependent:
		m.allow(dst)
	}
	return netip.AddrPortFrom(nat.ip, m.ext), dropNone
}

func (m *mapping) allow(a netip.AddrPort) {
	if m.allowed == nil {
		m.allowed = make(map[netip.AddrPort]struct{}, 1)
	}
	m.allowed[a] = struct{}{}
}

// inbound translates the destination of a packet from outside (src) to a
// public port of the NAT (dst), applying the filtering behaviour. Callers
// hold n.mu.
func (nat *NAT) inbound(src, dst netip.AddrPort, now time.Duration) (netip.AddrPort, DropReason) {
	m := nat.byExt[dst.Port()]
	if m == nil {
		return netip.AddrPort{}, DropNATNoMapping
	}
	if nat.expired(m, now) {
		nat.remove(m)
		return netip.AddrPort{}, DropNATNoMapping
	}
	var ok bool
	switch nat.cfg.Filtering {
	case EndpointIndependent:
		ok = true
	case AddressDependent:
		_, ok = m.allowed[netip.AddrPortFrom(src.Addr(), 0)]
	default:
		_, ok = m.allowed[src]
	}
	if !ok {
		return netip.AddrPort{}, DropNATFiltered
	}
	if nat.cfg.InboundRefresh {
		m.lastUsed = now
	}
	return m.key.internal, dropNone
}

// allocPort picks a free external port for a new mapping from an internal
// port: the first free port at or after the allocation's starting point,
// wrapping around the range. Callers hold n.mu.
func (nat *NAT) allocPort(internal uint16, now time.Duration) (uint16, bool) {
	const span = natPortMax - natPortMin + 1
	var start uint32
	switch nat.cfg.PortAllocation {
	case PortSequential:
		start = nat.nextPort
	case PortRandom:
		start = natPortMin + uint32(nat.rng.Uint64()%span)
	default:
		start = max(uint32(internal), natPortMin)
	}
	p, ok := nat.firstFree(start, now)
	if ok && nat.cfg.PortAllocation == PortSequential {
		nat.nextPort = natPortMin + (uint32(p)-natPortMin+1)%span
	}
	return p, ok
}

// firstFree finds the first free port from start on. A port held by an
// expired mapping is free: the start port is checked for that; further on,
// a busy NAT's bitmap skips used ports without looking at their mappings,
// so an expired one there waits for the next sweep.
func (nat *NAT) firstFree(start uint32, now time.Duration) (uint16, bool) {
	const span = natPortMax - natPortMin + 1
	free := func(p uint16) bool {
		m := nat.byExt[p]
		if m != nil && nat.expired(m, now) {
			nat.remove(m)
			return true
		}
		return m == nil
	}
	if free(uint16(start)) {
		return uint16(start), true
	}
	if len(nat.byExt) < busyNAT {
		for i := uint32(1); i < span; i++ {
			p := uint16(natPortMin + (start-natPortMin+i)%span)
			if free(p) {
				return p, true
			}
		}
		return 0, false
	}
	if nat.used == nil {
		nat.used = make([]uint64, 65536/64)
		for p := range nat.byExt {
			nat.used[p/64] |= 1 << (p % 64)
		}
	}
	// Scan [start+1, max], then [min, start].
	if p, ok := nat.zeroBit(start+1, natPortMax); ok {
		return p, true
	}
	return nat.zeroBit(natPortMin, start)
}

// zeroBit finds the first clear bit of the used bitmap in [lo, hi].
func (nat *NAT) zeroBit(lo, hi uint32) (uint16, bool) {
	for w := lo / 64; w <= hi/64; w++ {
		free := ^nat.used[w]
		if w == lo/64 {
			free &= ^uint64(0) << (lo % 64)
		}
		if w == hi/64 && hi%64 != 63 {
			free &= 1<<(hi%64+1) - 1
		}
		if free != 0 {
			return uint16(w*64 + uint32(bits.TrailingZeros64(free))), true
		}
	}
	return 0, false
}

// maybeSweep removes expired mappings once there have been as many new
// mappings since the last sweep as it left (at least 64): a sweep's cost is
// then paid for by the allocations before it (amortised O(1) each), and
// stored mappings stay within about twice the live ones plus those made
// since. Callers hold n.mu.
func (nat *NAT) maybeSweep(now time.Duration) {
	nat.sinceSweep++
	if nat.cfg.MappingTimeout <= 0 || nat.sinceSweep < max(nat.afterSweep, 64) {
		return
	}
	nat.sinceSweep = 0
	for _, m := range nat.maps {
		if nat.expired(m, now) {
			nat.remove(m)
		}
	}
	nat.afterSweep = len(nat.maps)
}

func (nat *NAT) String() string {
	return "netsim.NAT(" + nat.Addr().String() + ")"
}
