package host

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
)

// observedActivation is how many distinct peers must report the same
// public address before the host advertises it (one peer could lie).
const observedActivation = 2

// observedAddrs counts, per address the host was seen at, the peers that
// reported it.
type observedAddrs struct {
	byAddr map[string]map[peer.ID]struct{}
	addrs  map[string]ma.Multiaddr
}

// recordObserved notes that reporter sees us at observed over a Conn whose
// local side is local. Only addresses of the same transport are kept, and
// only public ones: a private address a peer reports is one we already know.
func (h *Host) recordObserved(reporter peer.ID, local, observed ma.Multiaddr) {
	ap, rest, err := transport.ToAddrPort(observed)
	if err != nil || !isPublic(ap.Addr()) {
		return
	}
	if _, lrest, err := transport.ToAddrPort(local); err != nil || !lrest.Equal(rest) {
		return
	}
	key := observed.String()
	h.mu.Lock()
	o := &h.observed
	if o.byAddr == nil {
		o.byAddr = make(map[string]map[peer.ID]struct{})
		o.addrs = make(map[string]ma.Multiaddr)
	}
	if o.byAddr[key] == nil {
		if len(o.byAddr) >= 64 { // bound what peers can make us hold
			h.mu.Unlock()
			return
		}
		o.byAddr[key] = make(map[peer.ID]struct{})
		o.addrs[key] = observed
	}
	if len(o.byAddr[key]) < 16 {
		o.byAddr[key][reporter] = struct{}{}
	}
	h.mu.Unlock()
	h.checkAddrsChanged()
}

// ObservedAddrs returns the public addresses peers report seeing us at,
// confirmed by at least two of them.
func (h *Host) ObservedAddrs() []ma.Multiaddr {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []ma.Multiaddr
	for k, reporters := range h.observed.byAddr {
		if len(reporters) >= observedActivation {
			out = append(out, h.observed.addrs[k])
		}
	}
	slices.SortFunc(out, func(a, b ma.Multiaddr) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// ListenAddrs returns the addresses the transports are bound to, as bound
// (possibly 0.0.0.0 or ::).
func (h *Host) ListenAddrs() []ma.Multiaddr {
	out := make([]ma.Multiaddr, 0, len(h.listeners))
	for _, l := range h.listeners {
		out = append(out, l.Multiaddr())
	}
	return out
}

// Addrs returns the addresses peers can dial the host at: the listen
// addresses with unspecified IPs expanded to the interfaces' addresses,
// plus confirmed observed public addresses, plus the relayed addresses
// (/…/p2p/RELAY/p2p-circuit) of the relays the host holds a reservation at.
func (h *Host) Addrs() []ma.Multiaddr {
	var ifaddrs []netip.Addr
	var out []ma.Multiaddr
	seen := map[string]bool{}
	add := func(a ma.Multiaddr) {
		if k := a.String(); !seen[k] {
			seen[k] = true
			out = append(out, a)
		}
	}
	for _, l := range h.listeners {
		a := l.Multiaddr()
		ap, rest, err := transport.ToAddrPort(a)
		if err != nil || !ap.Addr().IsUnspecified() {
			add(a)
			continue
		}
		if ifaddrs == nil {
			ifaddrs = interfaceAddrs()
		}
		v6 := ap.Addr().Is6()
		for _, ip := range ifaddrs {
			// A [::] socket is dual-stack: it serves IPv4 too.
			if ip.Is4() || v6 {
				if m, err := transport.FromAddrPort(netip.AddrPortFrom(ip, ap.Port()), rest.String()); err == nil {
					add(m)
				}
			}
		}
	}
	for _, a := range h.ObservedAddrs() {
		add(a)
	}
	if h.cfg.NAT != nil {
		for _, a := range h.cfg.NAT.RelayAddrs() {
			add(a)
		}
	}
	return out
}

// checkAddrsChanged emits EvtLocalAddrsChanged when Addrs differs from the
// last set seen.
func (h *Host) checkAddrsChanged() {
	now := h.Addrs()
	h.mu.Lock()
	changed := !slices.EqualFunc(now, h.lastAddrs, func(a, b ma.Multiaddr) bool { return a.Equal(b) })
	if changed {
		h.lastAddrs = now
	}
	h.mu.Unlock()
	if changed {
		h.bus.emit(EvtLocalAddrsChanged{Addrs: now})
	}
}

// ifaceCacheTTL is how long the interfaces' addresses are reused: listing
// them is a netlink round trip, and identify asks on every new Conn.
const ifaceCacheTTL = 5 * time.Second

var ifaceCache struct {
	sync.Mutex
	at    time.Time
	addrs []netip.Addr
}

// interfaceAddrs lists the usable unicast addresses of the machine's
// interfaces (no link-local: they need zones and rarely route), at most
// ifaceCacheTTL old.
func interfaceAddrs() []netip.Addr {
	ifaceCache.Lock()
	defer ifaceCache.Unlock()
	if ifaceCache.addrs != nil && time.Since(ifaceCache.at) < ifaceCacheTTL {
		return ifaceCache.addrs
	}
	ifaceCache.addrs, ifaceCache.at = listInterfaceAddrs(), time.Now()
	return ifaceCache.addrs
}

func listInterfaceAddrs() []netip.Addr {
	ias, err := net.InterfaceAddrs()
	if err != nil {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	}
	var out []netip.Addr
	for _, ia := range ias {
		pfx, err := netip.ParsePrefix(ia.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr().Unmap()
		if ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
			continue
		}
		out = append(out, ip)
	}
	return out
}

// isPublic reports whether ip is routable on the internet.
func isPublic(ip netip.Addr) bool {
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() &&
		!netip.MustParsePrefix("100.64.0.0/10").Contains(ip)
}
