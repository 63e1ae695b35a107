package natlab

import (
	"fmt"
	"net/netip"
	"strings"
)

// The ports a Sequential router hands out, in order, then again.
const (
	seqPortBase = 20000
	seqPorts    = 10000
)

// routerRules is the nftables ruleset of a router namespace that gives the
// RFC 4787 behaviour of kind, after the recipe in shared/natlab:
//
//   - every router drops new inbound flows to itself and forwards only
//     replies or DNATed flows (a firewall: an early inbound packet must not
//     leave a conntrack entry that later clashes with outbound NAT);
//   - port-restricted cone is plain masquerade (conntrack keeps the port);
//   - symmetric is masquerade with fully random ports;
//   - sequential (symmetric with predictable ports) SNATs each new flow to
//     the next port of a counter (nft numgen inc);
//   - address-dependent mapping SNATs to a port hashed from the internal
//     address and port and the remote IP;
//   - full cone and address-restricted learn, after SNAT, a map from the
//     mapped port to the internal address and port (and a set of remote IP
//     and mapped port for address-restricted) and DNAT new inbound flows by
//     it. Map entries time out with the conntrack UDP timeout and are
//     refreshed by outbound packets only.
func routerRules(kind Kind, wan netip.Addr, timeout int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `flush ruleset
table ip natlab {
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "wan" ct state established,related accept
		iifname "wan" counter drop
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "wan" ct state established,related accept
		iifname "wan" ct status dnat accept
		iifname "wan" counter drop
	}
`)
	if kind == FullCone || kind == AddrRestricted {
		match := ""
		if kind == AddrRestricted {
			match = "ip saddr . udp dport @ar "
		}
		fmt.Fprintf(&b, `	map fc { typeof udp dport : ip saddr . udp sport; flags dynamic,timeout; timeout %ds; }
	set ar { typeof ip daddr . udp sport; flags dynamic,timeout; timeout %ds; }
	chain learn {
		type filter hook postrouting priority srcnat + 10; policy accept;
		oifname "wan" meta l4proto udp ct direction original update @fc { ct reply proto-dst : ct original ip saddr . ct original proto-src } update @ar { ip daddr . ct reply proto-dst }
	}
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "wan" meta l4proto udp %sdnat ip to udp dport map @fc
	}
`, timeout, timeout, match)
	}
	b.WriteString("\tchain post {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n")
	switch kind {
	case Symmetric:
		b.WriteString("\t\toifname \"wan\" masquerade fully-random\n")
	case Sequential:
		// numgen inc counts the flows that reach this rule (only a flow's
		// first packet passes the nat chain), and a map turns the count
		// into the next port of 20000–29999: the map's values are typed
		// ports, where the raw number would land byte-swapped (nft 1.0.6
		// hands the 32-bit host-order count to the 16-bit port as is). The
		// kernel moves on when that port is taken towards the same remote.
		fmt.Fprintf(&b, "\t\toifname \"wan\" meta l4proto udp snat ip to %s : numgen inc mod %d map { ", wan, seqPorts)
		for i := range seqPorts {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%d : %d", i, seqPortBase+i)
		}
		b.WriteString(" }\n")
		b.WriteString("\t\toifname \"wan\" masquerade\n")
	case AddrDependent:
		fmt.Fprintf(&b, "\t\toifname \"wan\" meta l4proto udp snat ip to %s : jhash ip saddr . udp sport . ip daddr mod 20000 offset 20000\n", wan)
		b.WriteString("\t\toifname \"wan\" masquerade\n")
	default:
		b.WriteString("\t\toifname \"wan\" masquerade\n")
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}
