// Package nat holds what the rest of go-ipv8 needs to know about the NAT in
// front of a host: its RFC 4787 mapping and filtering behaviour, its public
// addresses, how long an idle UDP mapping lives, and the keepalive interval
// that follows from it. The measurements live in subpackages: nat/stun (STUN
// client, RFC 5780 server and the behaviour classification) and nat/lifetime
// (mapping lifetime). nat/natlab builds a lab of real Linux NATs for tests.
//
// Reaching a peer through NATs builds on these results: hole punching
// (nat/punch, which picks its strategy from both sides' behaviours),
// relaying (nat/relay) and keeping a session on the better of the two
// paths (nat/pathsel); nat/labtest proves them in the lab.
package nat

import (
	"fmt"
	"net/netip"
	"time"
)

// Behavior is one RFC 4787 behaviour, of the mapping or of the filtering.
type Behavior uint8

const (
	// Unknown: not measured, or the servers could not tell (Report says why).
	Unknown Behavior = iota
	// EndpointIndependent: one mapping (or one open filter) for every remote.
	EndpointIndependent
	// AddressDependent: per remote IP address.
	AddressDependent
	// AddressAndPortDependent: per remote IP address and port.
	AddressAndPortDependent
)

var behaviorNames = [...]string{"unknown", "endpoint-independent", "address-dependent", "address-and-port-dependent"}

// String returns the RFC 4787 name used in reports and JSON:
// "endpoint-independent", "address-dependent", "address-and-port-dependent"
// or "unknown".
func (b Behavior) String() string {
	if int(b) < len(behaviorNames) {
		return behaviorNames[b]
	}
	return fmt.Sprintf("behavior(%d)", uint8(b))
}

// Short is the abbreviation used in tables (EIM/ADM/APDM need the suffix
// M or F from the caller): "EI", "AD", "APD" or "?".
func (b Behavior) Short() string {
	switch b {
	case EndpointIndependent:
		return "EI"
	case AddressDependent:
		return "AD"
	case AddressAndPortDependent:
		return "APD"
	}
	return "?"
}

// MarshalText implements encoding.TextMarshaler (JSON uses it).
func (b Behavior) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *Behavior) UnmarshalText(t []byte) error {
	for i, n := range behaviorNames {
		if string(t) == n {
			*b = Behavior(i)
			return nil
		}
	}
	return fmt.Errorf("nat: unknown behavior %q", t)
}

// Tristate is a yes/no answer that may be unknown (not testable here).
type Tristate uint8

const (
	TriUnknown Tristate = iota
	TriYes
	TriNo
)

func (t Tristate) String() string {
	switch t {
	case TriYes:
		return "yes"
	case TriNo:
		return "no"
	}
	return "unknown"
}

// MarshalText implements encoding.TextMarshaler.
func (t Tristate) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Report is what a host learnt about its NAT.
type Report struct {
	// Local is the address of the port the tests ran on.
	Local netip.AddrPort
	// Public holds the server-reflexive addresses seen, one per server
	// that answered (duplicates removed), the primary server's first.
	Public []netip.AddrPort
	// NoNAT is true when the primary server saw the port's own address.
	NoNAT bool

	Mapping, Filtering Behavior
	// MappingReason and FilteringReason say why a behaviour is Unknown
	// (or how it was decided when not by the full RFC 5780 test).
	MappingReason, FilteringReason string
	// Hairpinning: can the host reach its own public address?
	Hairpinning Tristate

	// Servers is what each STUN server answered to the first Binding request.
	Servers []ServerResult
	// PortMapping is what the gateway offers for forwarding a port
	// (nat/portmap), when checked.
	PortMapping []PortMapStatus

	// Lifetime is the measured lifetime of an idle UDP mapping (0 when not
	// measured); LifetimeLow and LifetimeHigh bracket it (alive at Low,
	// gone at High).
	Lifetime, LifetimeLow, LifetimeHigh time.Duration
}

// ServerResult is one STUN server's answer to a plain Binding request.
type ServerResult struct {
	Server netip.AddrPort `json:"server"`
	// Mapped is the address the server saw (zero when it did not answer).
	Mapped netip.AddrPort `json:"mapped,omitzero"`
	// Other is its OTHER-ADDRESS: zero when it does not do RFC 5780.
	Other netip.AddrPort `json:"other,omitzero"`
	RTT   time.Duration  `json:"rtt_ns,omitempty"`
	Err   string         `json:"error,omitempty"`
}

// PortMapStatus is whether one port-mapping mechanism (NAT-PMP, UPnP IGD)
// answered, and the external address it reported.
type PortMapStatus struct {
	Protocol string     `json:"protocol"`
	Gateway  netip.Addr `json:"gateway,omitzero"`
	External netip.Addr `json:"external,omitzero"`
	Err      string     `json:"error,omitempty"`
}

// Classic returns the RFC 3489 name of a mapping/filtering pair, for
// display: "open internet", "full cone", "restricted cone",
// "port-restricted cone", "symmetric", "symmetric UDP firewall" or "unknown".
func Classic(noNAT bool, mapping, filtering Behavior) string {
	if noNAT {
		if filtering == EndpointIndependent {
			return "open internet"
		}
		if filtering == Unknown {
			return "no NAT (filtering unknown)"
		}
		return "symmetric UDP firewall"
	}
	switch mapping {
	case AddressDependent, AddressAndPortDependent:
		return "symmetric"
	case EndpointIndependent:
		switch filtering {
		case EndpointIndependent:
			return "full cone"
		case AddressDependent:
			return "restricted cone"
		case AddressAndPortDependent:
			return "port-restricted cone"
		}
	}
	return "unknown"
}

// DefaultKeepalive is the keepalive interval for idle paths while the
// mapping lifetime is unknown: under the 30 s that Linux conntrack and many
// home routers give an unreplied-then-answered UDP flow, with margin.
const DefaultKeepalive = 15 * time.Second

// Bounds of KeepaliveInterval.
const (
	MinKeepalive = 2 * time.Second
	MaxKeepalive = 120 * time.Second
)

// KeepaliveInterval is how often a host should send on an idle path so that
// its NAT mapping survives, given the measured lifetime lower bound (the
// longest idle time at which the mapping was seen alive; 0 = unknown). It is
// half of it, so that one lost keepalive does not lose the mapping, clamped
// to [MinKeepalive, MaxKeepalive].
func KeepaliveInterval(aliveAt time.Duration) time.Duration {
	if aliveAt <= 0 {
		return DefaultKeepalive
	}
	return min(max(aliveAt/2, MinKeepalive), MaxKeepalive)
}

// Connectivity says in one or two sentences what a report means for peers
// reaching this host and for hole punching.
func Connectivity(r Report) string {
	switch {
	case r.NoNAT && r.Filtering == EndpointIndependent:
		return "No NAT and no filtering: any peer can reach this host directly."
	case r.NoNAT:
		return "No NAT, but a firewall filters unsolicited packets: peers reach this host by hole punching (its address never changes, so punching succeeds with any peer)."
	case r.Mapping == EndpointIndependent && r.Filtering == EndpointIndependent:
		return "Endpoint-independent mapping and filtering: once the public address is known, any peer can reach this host directly."
	case r.Mapping == EndpointIndependent:
		return "Endpoint-independent mapping: the public address is the same for every peer, so hole punching works with every peer that can send first to it (including symmetric NATs behind which the peer learns the new port)."
	case r.Mapping == AddressDependent || r.Mapping == AddressAndPortDependent:
		return "The public port changes per destination (symmetric NAT): direct paths work with peers that have endpoint-independent mapping; against other hard NATs only port prediction or birthday probing may help, else a relay is needed."
	}
	return "The NAT's behaviour is unknown: try direct and punched paths, and keep a relay as fallback."
}
