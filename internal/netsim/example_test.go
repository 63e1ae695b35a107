package netsim_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/ipv8/go-ipv8/internal/netsim"
)

// A laptop behind a home NAT pings a public server on a virtual-time
// network: one-way delay 1 + 10 + 5 ms, the server sees the NAT's address.
func Example() {
	n := netsim.New(netsim.Config{Seed: 1, Virtual: true})
	defer n.Close()
	home := n.NewNAT(netip.MustParseAddr("198.51.100.20"), netsim.NATConfig{
		Mapping:   netsim.EndpointIndependent,
		Filtering: netsim.AddressAndPortDependent,
	}, netsim.Link{Latency: 10 * time.Millisecond, Bandwidth: 1_000_000})
	laptop := home.NewHost(netip.MustParseAddr("10.0.1.2"), netsim.Link{Latency: time.Millisecond})
	server := n.NewHost(netip.MustParseAddr("192.0.2.1"), netsim.Link{Latency: 5 * time.Millisecond})

	srv, _ := server.ListenUDP(3478)
	cli, _ := laptop.ListenUDP(5000)
	elapsed := func() time.Duration { return n.Clock().Now().Sub(netsim.VirtualEpoch) }
	srv.SetHandler(func(pkt []byte, from netip.AddrPort) {
		fmt.Printf("%v server got %q from %v\n", elapsed(), pkt, from)
		srv.WriteToUDPAddrPort([]byte("pong"), from)
	})
	cli.SetHandler(func(pkt []byte, from netip.AddrPort) {
		fmt.Printf("%v laptop got %q from %v\n", elapsed(), pkt, from)
	})
	cli.WriteToUDPAddrPort([]byte("ping"), srv.LocalAddrPort())
	n.RunFor(time.Second)
	fmt.Println(n.Stats())
	// Output:
	// 16.004ms server got "ping" from 198.51.100.20:5000
	// 32.008ms laptop got "pong" from 192.0.2.1:3478
	// sent=2 delivered=2 duplicated=0 reordered=0 dropped=0
}
