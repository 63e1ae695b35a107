package stun

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/ipv8/go-ipv8/nat"
)

// ErrNoServer: none of the STUN servers answered.
var ErrNoServer = errors.New("stun: no STUN server answered")

// DetectConfig says how Detect runs.
type DetectConfig struct {
	// Servers are asked in parallel for the public address; the first (in
	// this order) that answers with an OTHER-ADDRESS runs the RFC 5780
	// behaviour tests.
	Servers []netip.AddrPort
	// Local lists this host's own IP addresses, so that a mapped address
	// equal to one of them (with the port's own port) means "no NAT". The
	// port's bound address counts too when it is not unspecified.
	Local []netip.Addr
	// Timing of each transaction (DefaultTiming when zero). The filtering
	// tests, where silence is the answer, take the whole Timeout.
	Timing Timing
	// NoHairpin skips the hairpinning test.
	NoHairpin bool
}

// Detect learns the port's public address(es) and classifies the NAT by
// RFC 5780: mapping (§4.3) and filtering (§4.4) behaviour, and
// hairpinning (§4.5).
//
// The filtering tests run before the mapping tests that contact the
// server's alternate address: once the port has sent to an address, a
// filtering NAT lets that address's answers in, and the filtering verdict
// would be too kind. For the same reason Detect is exact only on a port
// that has not talked to the server's alternate address within the
// mapping's lifetime (a fresh port, or the host's port at start).
func (e *Endpoint) Detect(ctx context.Context, cfg DetectConfig) (nat.Report, error) {
	t := cfg.Timing
	if t.RTO <= 0 {
		t = DefaultTiming
	}
	rep := nat.Report{Local: e.LocalAddr()}
	if len(cfg.Servers) == 0 {
		return rep, fmt.Errorf("%w: no servers given", ErrNoServer)
	}

	// Test I with every server, in parallel.
	rep.Servers = make([]nat.ServerResult, len(cfg.Servers))
	var wg sync.WaitGroup
	for i, s := range cfg.Servers {
		wg.Go(func() {
			start := e.clk.Now()
			r, _, err := e.Binding(ctx, s, Request{}, t)
			res := nat.ServerResult{Server: s}
			switch {
			case err != nil:
				res.Err = err.Error()
			case r.Error != 0:
				res.Err = fmt.Sprintf("error %d %s", r.Error, r.Reason)
			default:
				res.Mapped, res.Other, res.RTT = r.Mapped, r.Other, e.clk.Now().Sub(start)
			}
			rep.Servers[i] = res
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	primary := -1
	for i, s := range rep.Servers {
		if s.Mapped.IsValid() {
			if !slices.Contains(rep.Public, s.Mapped) {
				rep.Public = append(rep.Public, s.Mapped)
			}
			if primary < 0 && s.Other.IsValid() {
				primary = i
			}
		}
	}
	if len(rep.Public) == 0 {
		return rep, fmt.Errorf("%w (tried %d)", ErrNoServer, len(cfg.Servers))
	}
	if primary < 0 {
		e.detectWithout5780(&rep)
		return rep, nil
	}
	p := rep.Servers[primary]
	// The primary's public address first.
	rep.Public = slices.DeleteFunc(rep.Public, func(a netip.AddrPort) bool { return a == p.Mapped })
	rep.Public = slices.Insert(rep.Public, 0, p.Mapped)
	rep.NoNAT = e.isLocal(p.Mapped, cfg.Local)

	// Filtering (§4.4): ask for answers from the other IP and port, and
	// from the other port only, before anything is sent to the alternate.
	var both, port filterResult
	wg.Go(func() { both = e.filterTest(ctx, p, ChangeIP|ChangePort, t) })
	wg.Go(func() { port = e.filterTest(ctx, p, ChangePort, t) })
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	switch {
	case both.unsupported != "":
		rep.FilteringReason = both.unsupported
	case port.unsupported != "" && !both.got:
		rep.FilteringReason = port.unsupported
	case both.got:
		rep.Filtering = nat.EndpointIndependent
	case port.got:
		rep.Filtering = nat.AddressDependent
	default:
		rep.Filtering = nat.AddressAndPortDependent
	}

	// Mapping (§4.3) and hairpinning (§4.5), in parallel.
	if !cfg.NoHairpin {
		wg.Go(func() {
			ok, err := e.Hairpin(ctx, p.Mapped, t)
			switch {
			case err != nil:
			case ok:
				rep.Hairpinning = nat.TriYes
			default:
				rep.Hairpinning = nat.TriNo
			}
		})
	}
	if rep.NoNAT {
		rep.Mapping = nat.EndpointIndependent
		rep.MappingReason = "no NAT: the server saw the port's own address"
	} else {
		rep.Mapping, rep.MappingReason = e.mappingTests(ctx, p, t)
	}
	wg.Wait()
	return rep, ctx.Err()
}

type filterResult struct {
	got         bool   // the changed response arrived
	unsupported string // why the server cannot run this test
}

// filterTest asks server p to answer from another address (change) and
// reports whether the answer got through the NAT.
func (e *Endpoint) filterTest(ctx context.Context, p nat.ServerResult, change Change, t Timing) filterResult {
	r, from, err := e.Binding(ctx, p.Server, Request{Change: change}, t)
	if err != nil {
		return filterResult{} // silence: filtered (or lost, after every retry)
	}
	if r.Error != 0 {
		return filterResult{unsupported: fmt.Sprintf("server %s does not support CHANGE-REQUEST (error %d %s)", p.Server, r.Error, r.Reason)}
	}
	want := p.Other
	if change == ChangePort {
		want = netip.AddrPortFrom(p.Server.Addr(), p.Other.Port())
	}
	src := r.Origin
	if from.IsValid() {
		src = from
	}
	if src.Addr().Unmap() != want.Addr().Unmap() || src.Port() != want.Port() {
		if src == p.Server {
			return filterResult{unsupported: fmt.Sprintf("server %s ignored CHANGE-REQUEST (answered from its primary address)", p.Server)}
		}
		return filterResult{unsupported: fmt.Sprintf("server %s answered CHANGE-REQUEST %s from %s, not %s", p.Server, change, src, want)}
	}
	return filterResult{got: true}
}

// mappingTests runs tests II and III of §4.3.
func (e *Endpoint) mappingTests(ctx context.Context, p nat.ServerResult, t Timing) (nat.Behavior, string) {
	alt1 := netip.AddrPortFrom(p.Other.Addr(), p.Server.Port())
	r2, _, err := e.Binding(ctx, alt1, Request{}, t)
	if err != nil || r2.Error != 0 {
		return nat.Unknown, fmt.Sprintf("no answer from the server's alternate address %s: %v", alt1, errOr(err, r2))
	}
	if r2.Mapped == p.Mapped {
		return nat.EndpointIndependent, ""
	}
	r3, _, err := e.Binding(ctx, p.Other, Request{}, t)
	if err != nil || r3.Error != 0 {
		return nat.Unknown, fmt.Sprintf("mapping changes with the remote IP, but no answer from %s to tell ADM from APDM: %v", p.Other, errOr(err, r3))
	}
	if r3.Mapped == r2.Mapped {
		return nat.AddressDependent, ""
	}
	return nat.AddressAndPortDependent, ""
}

func errOr(err error, r Response) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("error %d %s", r.Error, r.Reason)
}

// detectWithout5780 decides what it can from plain servers: if servers at
// different IPs saw the same address, the mapping does not depend on the
// remote address; if they saw different ones it does, but not how.
func (e *Endpoint) detectWithout5780(rep *nat.Report) {
	rep.FilteringReason = "no server supports RFC 5780 (OTHER-ADDRESS, CHANGE-REQUEST): filtering cannot be tested"
	ips := map[netip.Addr]bool{}
	for _, s := range rep.Servers {
		if s.Mapped.IsValid() {
			ips[s.Server.Addr()] = true
		}
	}
	switch {
	case len(rep.Public) > 1:
		rep.MappingReason = "servers saw different public addresses, so the mapping depends on the remote (a symmetric NAT), but without an RFC 5780 server address-dependent cannot be told from address-and-port-dependent"
	case len(ips) > 1:
		rep.Mapping = nat.EndpointIndependent
		rep.MappingReason = "servers at different IP addresses saw the same public address (no RFC 5780 server)"
	default:
		rep.MappingReason = "only one server answered and it does not support RFC 5780 (no OTHER-ADDRESS)"
	}
}

func (e *Endpoint) isLocal(mapped netip.AddrPort, local []netip.Addr) bool {
	own := e.LocalAddr()
	if mapped.Port() != own.Port() {
		return false
	}
	m := mapped.Addr().Unmap()
	if own.Addr().Unmap() == m {
		return true
	}
	for _, a := range local {
		if a.Unmap() == m {
			return true
		}
	}
	return false
}
