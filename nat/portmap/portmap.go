// Package portmap asks the gateway in front of a host to forward a UDP port
// to it, with NAT-PMP (RFC 6886, jackpal/go-nat-pmp) or UPnP IGD
// (huin/goupnp: WANIPConnection 1 and 2, WANPPPConnection 1). A forwarded
// port makes the host reachable without hole punching, whatever the NAT's
// filtering. Probe reports which mechanisms answer; Map creates a mapping
// with the first that works, Unmap removes it.
package portmap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/huin/goupnp/dcps/internetgateway2"
	natpmp "github.com/jackpal/go-nat-pmp"

	"github.com/ipv8/go-ipv8/nat"
)

// Protocol names a port-mapping mechanism.
const (
	NATPMP = "nat-pmp"
	UPnP   = "upnp-igd"
)

// ErrNoGateway: no mechanism answered.
var ErrNoGateway = errors.New("portmap: no NAT-PMP or UPnP IGD gateway answered")

// Config says where to look. The zero value discovers everything.
type Config struct {
	// Gateway is the NAT-PMP server (default: the default route's gateway
	// from /proc/net/route).
	Gateway netip.Addr
	// UPnPURL is the IGD root description to use instead of SSDP
	// discovery (for tests, or a known router).
	UPnPURL string
	// Timeout bounds each mechanism's probe (default 2 s; SSDP discovery
	// itself waits 2 s).
	Timeout          time.Duration
	NoNATPMP, NoUPnP bool
}

func (c Config) timeout() time.Duration {
	if c.Timeout <= 0 {
		return 2 * time.Second
	}
	return c.Timeout
}

// Probe asks every mechanism, in parallel, for the external address.
func Probe(ctx context.Context, cfg Config) []nat.PortMapStatus {
	var out []nat.PortMapStatus
	var mu sync.Mutex
	var wg sync.WaitGroup
	add := func(s nat.PortMapStatus) { mu.Lock(); out = append(out, s); mu.Unlock() }
	if !cfg.NoNATPMP {
		wg.Go(func() {
			s := nat.PortMapStatus{Protocol: NATPMP}
			gw, err := cfg.gateway()
			if err == nil {
				s.Gateway = gw
				s.External, err = natpmpExternal(ctx, gw, cfg.timeout())
			}
			if err != nil {
				s.Err = err.Error()
			}
			add(s)
		})
	}
	if !cfg.NoUPnP {
		wg.Go(func() {
			s := nat.PortMapStatus{Protocol: UPnP}
			cs, err := igdClients(ctx, cfg)
			if err == nil {
				var ext string
				ext, err = cs[0].GetExternalIPAddressCtx(ctx)
				s.Gateway = cs[0].gateway
				if err == nil {
					s.External, err = netip.ParseAddr(ext)
				}
			}
			if err != nil {
				s.Err = err.Error()
			}
			add(s)
		})
	}
	wg.Wait()
	if len(out) == 2 && out[0].Protocol != NATPMP {
		out[0], out[1] = out[1], out[0]
	}
	return out
}

// Mapping is a forwarded UDP port.
type Mapping struct {
	Protocol string
	Gateway  netip.Addr
	Internal uint16
	External netip.AddrPort
	Lifetime time.Duration
}

// Map asks for internal port to be forwarded for lifetime (NAT-PMP
// first, then UPnP), asking for the same external port. Renew it before
// Lifetime runs out by calling Map again.
func Map(ctx context.Context, cfg Config, internal uint16, lifetime time.Duration) (Mapping, error) {
	var errs []error
	if !cfg.NoNATPMP {
		gw, err := cfg.gateway()
		if err == nil {
			var m Mapping
			if m, err = natpmpMap(ctx, gw, internal, lifetime, cfg.timeout()); err == nil {
				return m, nil
			}
		}
		errs = append(errs, fmt.Errorf("NAT-PMP: %w", err))
	}
	if !cfg.NoUPnP {
		m, err := upnpMap(ctx, cfg, internal, lifetime)
		if err == nil {
			return m, nil
		}
		errs = append(errs, fmt.Errorf("UPnP: %w", err))
	}
	return Mapping{}, fmt.Errorf("%w: %w", ErrNoGateway, errors.Join(errs...))
}

// Unmap removes a mapping.
func Unmap(ctx context.Context, cfg Config, m Mapping) error {
	switch m.Protocol {
	case NATPMP:
		c := natpmp.NewClientWithTimeout(net.IP(m.Gateway.AsSlice()), cfg.timeout())
		_, err := runCtx(ctx, func() (*natpmp.AddPortMappingResult, error) {
			return c.AddPortMapping("udp", int(m.Internal), 0, 0) // lifetime 0 deletes (RFC 6886 §3.4)
		})
		return err
	case UPnP:
		cs, err := igdClients(ctx, cfg)
		if err != nil {
			return err
		}
		return cs[0].DeletePortMappingCtx(ctx, "", m.External.Port(), "UDP")
	}
	return fmt.Errorf("portmap: unknown protocol %q", m.Protocol)
}

func (c Config) gateway() (netip.Addr, error) {
	if c.Gateway.IsValid() {
		return c.Gateway, nil
	}
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return netip.Addr{}, fmt.Errorf("portmap: no default gateway known: %w", err)
	}
	return ParseProcNetRoute(b)
}

// ParseProcNetRoute returns the IPv4 gateway of the default route in the
// contents of Linux's /proc/net/route.
func ParseProcNetRoute(b []byte) (netip.Addr, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[1] != "00000000" {
			continue
		}
		gw, err := hex.DecodeString(f[2])
		if err != nil || len(gw) != 4 {
			continue
		}
		// The kernel prints the address as a host-order (little-endian) word.
		a := netip.AddrFrom4([4]byte(binary.LittleEndian.AppendUint32(nil, binary.BigEndian.Uint32(gw))))
		if !a.IsUnspecified() {
			return a, nil
		}
	}
	return netip.Addr{}, errors.New("portmap: no default route with a gateway")
}

// runCtx runs a blocking call (go-nat-pmp has no context) and gives up on
// it when ctx ends; the call ends by its own timeout.
func runCtx[T any](ctx context.Context, f func() (T, error)) (T, error) {
	type res struct {
		v   T
		err error
	}
	ch := make(chan res, 1)
	go func() { v, err := f(); ch <- res{v, err} }()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

func natpmpExternal(ctx context.Context, gw netip.Addr, timeout time.Duration) (netip.Addr, error) {
	c := natpmp.NewClientWithTimeout(net.IP(gw.AsSlice()), timeout)
	r, err := runCtx(ctx, c.GetExternalAddress)
	if err != nil {
		return netip.Addr{}, err
	}
	return netip.AddrFrom4(r.ExternalIPAddress), nil
}

func natpmpMap(ctx context.Context, gw netip.Addr, internal uint16, lifetime time.Duration, timeout time.Duration) (Mapping, error) {
	ext, err := natpmpExternal(ctx, gw, timeout)
	if err != nil {
		return Mapping{}, err
	}
	c := natpmp.NewClientWithTimeout(net.IP(gw.AsSlice()), timeout)
	r, err := runCtx(ctx, func() (*natpmp.AddPortMappingResult, error) {
		return c.AddPortMapping("udp", int(internal), int(internal), int(lifetime/time.Second))
	})
	if err != nil {
		return Mapping{}, err
	}
	return Mapping{Protocol: NATPMP, Gateway: gw, Internal: r.InternalPort,
		External: netip.AddrPortFrom(ext, r.MappedExternalPort), Lifetime: time.Duration(r.PortMappingLifetimeInSeconds) * time.Second}, nil
}

// igd is what the three UPnP connection services share.
type igd struct {
	igdService
	gateway netip.Addr
	local   net.IP
}

type igdService interface {
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
	AddPortMappingCtx(ctx context.Context, remoteHost string, extPort uint16, proto string, intPort uint16, intClient string, enabled bool, desc string, lease uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, extPort uint16, proto string) error
}

// igdClients finds the gateway's connection services, by cfg.UPnPURL or
// by SSDP discovery (all three service types in parallel).
func igdClients(ctx context.Context, cfg Config) ([]igd, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout()+3*time.Second)
	defer cancel()
	var out []igd
	var mu sync.Mutex
	var wg sync.WaitGroup
	var loc *url.URL
	if cfg.UPnPURL != "" {
		u, err := url.Parse(cfg.UPnPURL)
		if err != nil {
			return nil, err
		}
		loc = u
	}
	add := func(s igdService, host string, local net.IP) {
		g := igd{igdService: s, local: local}
		if h, _, err := net.SplitHostPort(host); err == nil {
			g.gateway, _ = netip.ParseAddr(h)
		}
		mu.Lock()
		out = append(out, g)
		mu.Unlock()
	}
	wg.Go(func() {
		for _, c := range findIGD(ctx, loc, internetgateway2.NewWANIPConnection2ClientsByURLCtx, internetgateway2.NewWANIPConnection2ClientsCtx) {
			add(c, c.Location.Host, c.LocalAddr())
		}
	})
	wg.Go(func() {
		for _, c := range findIGD(ctx, loc, internetgateway2.NewWANIPConnection1ClientsByURLCtx, internetgateway2.NewWANIPConnection1ClientsCtx) {
			add(c, c.Location.Host, c.LocalAddr())
		}
	})
	wg.Go(func() {
		for _, c := range findIGD(ctx, loc, internetgateway2.NewWANPPPConnection1ClientsByURLCtx, internetgateway2.NewWANPPPConnection1ClientsCtx) {
			add(c, c.Location.Host, c.LocalAddr())
		}
	})
	wg.Wait()
	if len(out) == 0 {
		return nil, errors.New("no UPnP IGD found")
	}
	return out, nil
}

// findIGD returns the clients of one UPnP service type: those at loc when
// it is set, else those SSDP discovers. Errors leave the list empty: the
// other service types may still answer.
func findIGD[T any](ctx context.Context, loc *url.URL,
	byURL func(context.Context, *url.URL) ([]T, error),
	discover func(context.Context) ([]T, []error, error)) []T {
	if loc != nil {
		cs, _ := byURL(ctx, loc)
		return cs
	}
	cs, _, _ := discover(ctx)
	return cs
}

func upnpMap(ctx context.Context, cfg Config, internal uint16, lifetime time.Duration) (Mapping, error) {
	cs, err := igdClients(ctx, cfg)
	if err != nil {
		return Mapping{}, err
	}
	c := cs[0]
	extS, err := c.GetExternalIPAddressCtx(ctx)
	if err != nil {
		return Mapping{}, err
	}
	ext, err := netip.ParseAddr(extS)
	if err != nil {
		return Mapping{}, fmt.Errorf("gateway's external address %q: %w", extS, err)
	}
	local := c.local
	if local == nil && c.gateway.IsValid() {
		// The address this host reaches the gateway from.
		if conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.gateway, 1900))); err == nil {
			local = conn.LocalAddr().(*net.UDPAddr).IP
			conn.Close()
		}
	}
	if local == nil {
		return Mapping{}, errors.New("cannot tell this host's LAN address")
	}
	if err := c.AddPortMappingCtx(ctx, "", internal, "UDP", internal, local.String(), true, "go-ipv8", uint32(lifetime/time.Second)); err != nil {
		return Mapping{}, err
	}
	return Mapping{Protocol: UPnP, Gateway: c.gateway, Internal: internal, External: netip.AddrPortFrom(ext, internal), Lifetime: lifetime}, nil
}
