package labtest

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/internal/netsim"
	"github.com/ipv8/go-ipv8/nat"
	"github.com/ipv8/go-ipv8/transport"
	"github.com/ipv8/go-ipv8/transport/udp"
)

// simNode is a node on a netsim host.
func simNode(t *testing.T, h *netsim.Host, port uint16, cfg nodeConfig) *node {
	t.Helper()
	c, err := h.ListenUDP(port)
	if err != nil {
		t.Fatal(err)
	}
	p := udp.NewPort(c, udp.Config{})
	cfg.port, cfg.closePort = p, p.Close
	return newNode(t, cfg)
}

// The relay-to-direct upgrade on internal/netsim (no root needed): two
// hosts behind port-restricted NATs stream through the relay, punch, and
// the running stream moves to the direct path byte-exact.
func TestRelayToDirectUpgradeKeepsStreamOnNetsim(t *testing.T) {
	size := int64(32 << 20)
	n := netsim.New(netsim.Config{Seed: 3})
	t.Cleanup(func() { n.Close() })
	// 10 MB/s access links: the stream takes a while, and the punch comes
	// early in it.
	wan := netsim.Link{Latency: 5 * time.Millisecond, Bandwidth: 10_000_000}
	relayHost := n.NewHost(netip.MustParseAddr("192.0.2.1"), wan)
	r := simNode(t, relayHost, 4000, nodeConfig{name: "relay", serve: true})
	var stuns []netip.AddrPort
	for _, ip := range []string{"192.0.2.2", "192.0.2.3"} {
		h := n.NewHost(netip.MustParseAddr(ip), wan)
		for _, port := range []uint16{3478, 3479} {
			s := simNode(t, h, port, nodeConfig{})
			stuns = append(stuns, s.port.LocalAddr())
		}
	}
	prc := netsim.NATConfig{Mapping: netsim.EndpointIndependent, Filtering: netsim.AddressAndPortDependent}
	behind := func(ip string) *netsim.Host {
		return n.NewNAT(netip.MustParseAddr(ip), prc, wan).NewHost(netip.MustParseAddr("10.0.0.2"), netsim.Link{Latency: time.Millisecond})
	}
	cfg := nodeConfig{sessions: true, stunServers: stuns, filtering: nat.AddressAndPortDependent}
	a := simNode(t, behind("198.51.100.1"), 5000, cfg)
	b := simNode(t, behind("198.51.100.2"), 5000, cfg)
	relayAt := r.port.LocalAddr()

	ctx := ctxT(t, 2*time.Minute)
	connA, connB, ca, sess := relayedConns(t, ctx, a, b, relayAt)
	tr := startTransfer(ctx, connA, connB, size, 4)
	if err := tr.waitReceived(ctx, size/8); err != nil {
		t.Fatal(err)
	}
	switched := make(chan uint64, 4)
	sel, res := upgrade(t, ctx, a, b, ca, sess, func(transport.PathKind) { switched <- r.relay.Stats().BytesRelayed })
	var atSwitch uint64
	select {
	case atSwitch = <-switched:
		if got := tr.received.Load(); got > size*3/4 {
			t.Fatalf("the session moved after %d of %d bytes: too late to matter", got, size)
		}
	case <-time.After(20 * time.Second):
		d, r := sel.Samples()
		t.Fatalf("the session did not move to the punched path (%v): direct %+v, relay %+v", res, d, r)
	}
	if err := tr.wait(ctx); err != nil {
		t.Fatal(err)
	}
	after := r.relay.Stats().BytesRelayed
	t.Logf("punch %v; the relay carried %.1f MiB until the move, %.2f MiB after", res, float64(atSwitch)/(1<<20), float64(after-atSwitch)/(1<<20))
	if sel.Current() != transport.PathDirect || sess.Path().Kind() != transport.PathDirect {
		t.Fatal("not on the direct path at the end")
	}
	if got, _, _ := transport.ToAddrPort(connB.RemoteMultiaddr()); got.Addr() != netip.MustParseAddr("198.51.100.1") {
		t.Fatalf("b sends to %s", got)
	}
	if after-atSwitch > 2<<20 {
		t.Fatalf("the relay carried %d bytes after the move", after-atSwitch)
	}
	if hs := a.noise.Stats().HandshakesInitiated + b.noise.Stats().HandshakesInitiated; hs != 1 {
		t.Fatalf("%d handshakes", hs)
	}
}
