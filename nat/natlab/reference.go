package natlab

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/ipv8/go-ipv8/nat"
)

// Expected is the behaviour a kind of router is built to have.
func Expected(k Kind) (mapping, filtering nat.Behavior) {
	switch k {
	case Open, FullCone:
		return nat.EndpointIndependent, nat.EndpointIndependent
	case AddrRestricted:
		return nat.EndpointIndependent, nat.AddressDependent
	case PortRestricted:
		return nat.EndpointIndependent, nat.AddressAndPortDependent
	case AddrDependent:
		return nat.AddressDependent, nat.AddressAndPortDependent
	case Symmetric, Sequential:
		return nat.AddressAndPortDependent, nat.AddressAndPortDependent
	}
	return nat.Unknown, nat.Unknown
}

// Discovery is what coturn's turnutils_natdiscovery -m -f concluded.
type Discovery struct {
	Mapping, Filtering nat.Behavior
	NoNAT              bool
	Output             string
}

// NATDiscovery runs the reference classifier, turnutils_natdiscovery -m -f,
// in the named client against the STUN server at server (port 3478).
func (l *Lab) NATDiscovery(ctx context.Context, client string, server netip.Addr) (Discovery, error) {
	out, err := l.Command(ctx, l.ClientNS(client), "turnutils_natdiscovery", "-m", "-f",
		"-L", l.ClientIP(client).String(), server.String()).CombinedOutput()
	d := ParseNATDiscovery(string(out))
	if err != nil {
		return d, fmt.Errorf("turnutils_natdiscovery in %s: %v", client, err)
	}
	return d, nil
}

// ParseNATDiscovery reads the verdicts of turnutils_natdiscovery -m -f
// (coturn 4.6): in each of the "Mapping Behavior Discovery" and "Filtering
// Behavior Discovery" sections, the last "NAT with … Mapping!/Filtering!"
// line; "No NAT!" anywhere sets NoNAT. A section without a verdict stays
// Unknown.
func ParseNATDiscovery(out string) Discovery {
	d := Discovery{Output: out}
	section := ""
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.Contains(line, "Mapping Behavior Discovery"):
			section = "m"
		case strings.Contains(line, "Filtering Behavior Discovery"):
			section = "f"
		case strings.HasPrefix(line, "No NAT!"):
			d.NoNAT = true
		case strings.HasPrefix(line, "NAT with "):
			var b nat.Behavior
			switch {
			case strings.HasPrefix(line, "NAT with Endpoint Independent"):
				b = nat.EndpointIndependent
			case strings.HasPrefix(line, "NAT with Address Dependent"):
				b = nat.AddressDependent
			case strings.HasPrefix(line, "NAT with Address and Port Dependent"):
				b = nat.AddressAndPortDependent
			}
			switch {
			case section == "m" && strings.HasSuffix(line, "Mapping!"):
				d.Mapping = b
			case section == "f" && strings.HasSuffix(line, "Filtering!"):
				d.Filtering = b
			}
		}
	}
	return d
}
