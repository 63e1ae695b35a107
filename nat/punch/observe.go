package punch

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/ipv8/go-ipv8/nat"
	"github.com/ipv8/go-ipv8/nat/stun"
)

// Observe describes this host for an attempt: it sends a Binding request
// from the port (through e) to each STUN server in turn — every host
// answers them, so peers and relays serve — and reads the mapping and the
// port allocation from the mapped addresses:
//
//   - the same address from every server, at two IPs at least:
//     endpoint-independent mapping (no NAT when it is the port's own
//     address); from one IP only: unknown;
//   - the same port from two servers at one IP but another from a second
//     IP: address-dependent; else address-and-port-dependent;
//   - for a dependent mapping, ports that grow by the same small step from
//     request to request: sequential allocation (LastPort is the newest,
//     the next mapping gets LastPort+Step); otherwise random.
//
// Only new mappings show the allocation, so the servers must be ones the
// port has not talked to within the mapping lifetime; give at least four
// (two IPs with two ports each: an address-dependent NAT shows only one
// new mapping per IP, and sequential allocation needs three to be seen). The filtering behaviour cannot be seen this way; pass
// what detection found (nat/stun Detect) or nat.Unknown. Candidates are
// the first mapped address, then local.
func Observe(ctx context.Context, e *stun.Endpoint, servers []netip.AddrPort, filtering nat.Behavior, local ...netip.AddrPort) (Info, error) {
	type seen struct{ server, mapped netip.AddrPort }
	var got []seen
	var errs []error
	for _, s := range servers {
		r, _, err := e.Binding(ctx, s, stun.Request{}, stun.Timing{RTO: 200e6, Timeout: 1500e6})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if r.Error != 0 || !r.Mapped.IsValid() {
			errs = append(errs, fmt.Errorf("stun: %s answered error %d", s, r.Error))
			continue
		}
		got = append(got, seen{s, r.Mapped})
	}
	if len(got) == 0 {
		return Info{}, fmt.Errorf("punch: no STUN server answered: %w", errors.Join(errs...))
	}
	t := Traits{Filtering: filtering, Mapping: nat.EndpointIndependent, Alloc: AllocPreserve}
	first := got[0].mapped
	for _, g := range got[1:] {
		if g.mapped != first {
			t.Mapping = nat.AddressAndPortDependent
		}
	}
	ips := map[netip.Addr]bool{}
	for _, g := range got {
		ips[g.server.Addr()] = true
	}
	if t.Mapping == nat.EndpointIndependent && len(ips) < 2 {
		// One IP answered: an address-dependent NAT would look the same.
		t.Mapping, t.Alloc = nat.Unknown, AllocUnknown
	}
	if t.Mapping == nat.AddressAndPortDependent {
		// Two servers at one IP (different ports) that saw one mapping
		// mean the NAT keys mappings by IP only.
		sameIPSamePort, sameIPDiffPort := false, false
		for i := range got {
			for j := i + 1; j < len(got); j++ {
				if got[i].server.Addr() != got[j].server.Addr() || got[i].server.Port() == got[j].server.Port() {
					continue
				}
				if got[i].mapped == got[j].mapped {
					sameIPSamePort = true
				} else {
					sameIPDiffPort = true
				}
			}
		}
		if sameIPSamePort && !sameIPDiffPort {
			t.Mapping = nat.AddressDependent
		}
		t.Alloc, t.Step, t.LastPort = allocation(func() []uint16 {
			var ports []uint16
			for i, g := range got {
				if i == 0 || g.mapped != got[i-1].mapped {
					ports = append(ports, g.mapped.Port())
				}
			}
			return ports
		}())
	}
	for _, l := range local {
		if l == first {
			t.NoNAT = true
		}
	}
	info := Info{Traits: t, Candidates: []netip.AddrPort{first}}
	for _, l := range local {
		if l != first && l.IsValid() && !l.Addr().IsUnspecified() {
			info.Candidates = append(info.Candidates, l)
		}
	}
	return info, nil
}

// maxStep is the largest port step still taken for sequential allocation.
const maxStep = 16

// allocation judges the ports of successive new mappings: sequential
// takes at least three ports in constant small steps (two could be so by
// chance: one time in a few hundred for random ports).
func allocation(ports []uint16) (Alloc, int16, uint16) {
	if len(ports) < 2 {
		return AllocUnknown, 0, 0
	}
	if len(ports) < 3 {
		return AllocRandom, 0, 0
	}
	step := int(ports[1]) - int(ports[0])
	for i := 2; i < len(ports); i++ {
		if int(ports[i])-int(ports[i-1]) != step {
			return AllocRandom, 0, 0
		}
	}
	if step == 0 || step > maxStep || step < -maxStep {
		return AllocRandom, 0, 0
	}
	return AllocSequential, int16(step), ports[len(ports)-1]
}
