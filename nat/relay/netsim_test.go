package relay

import (
	"bytes"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/internal/netsim"
	"github.com/ipv8/go-ipv8/security/noise"
	"github.com/ipv8/go-ipv8/transport"
	"github.com/ipv8/go-ipv8/transport/udp"
)

// simPort is a port on a netsim host.
func simPort(t testing.TB, h *netsim.Host, port uint16) *udp.Port {
	t.Helper()
	c, err := h.ListenUDP(port)
	if err != nil {
		t.Fatal(err)
	}
	p := udp.NewPort(c, udp.Config{})
	t.Cleanup(func() { p.Close() })
	return p
}

// tap records what a port sends.
type tap struct {
	transport.Port
	mu   sync.Mutex
	sent [][]byte
}

func (tp *tap) WriteTo(b []byte, to netip.AddrPort) error {
	tp.mu.Lock()
	tp.sent = append(tp.sent, append([]byte(nil), b...))
	tp.mu.Unlock()
	return tp.Port.WriteTo(b, to)
}

// A NAT behind which a client sits forgets its mappings mid-circuit (NAT
// rebinding: the client's public port changes). The relay drops the
// circuit's data from the unknown address, tells the client, the client
// re-reserves from its new address, and the circuit carries data again.
func TestCircuitFollowsAnEndWhoseAddressChanged(t *testing.T) {
	n := netsim.New(netsim.Config{Seed: 7})
	t.Cleanup(func() { n.Close() })
	link := netsim.Link{Latency: 2 * time.Millisecond}
	relayHost := n.NewHost(netip.MustParseAddr("192.0.2.1"), link)
	home := n.NewNAT(netip.MustParseAddr("198.51.100.7"), netsim.NATConfig{
		Mapping: netsim.EndpointIndependent, Filtering: netsim.AddressAndPortDependent,
		PortAllocation: netsim.PortRandom,
	}, link)
	aHost := home.NewHost(netip.MustParseAddr("10.0.0.2"), link)
	bHost := n.NewHost(netip.MustParseAddr("192.0.2.9"), link)

	r := newNode(t, simPort(t, relayHost, 4000), Config{Serve: true})
	a := newNode(t, simPort(t, aHost, 5000), Config{})
	b := newNode(t, simPort(t, bHost, 6000), Config{})
	ca, cb := circuit(t, r, a, b)
	inA, inB := collect(ca), collect(cb)
	ca.WritePacket([]byte("before"))
	eventually(t, "first datagram", 3*time.Second, func() bool { return inB.count() == 1 })
	before := cb.PeerAddr()

	home.FlushMappings()
	// a keeps sending; the first datagrams from the new port are dropped
	// until the relay's hint makes a re-reserve.
	eventually(t, "data flows again after the rebinding", 10*time.Second, func() bool {
		ca.WritePacket([]byte("after"))
		return inB.count() >= 2
	})
	cb.WritePacket([]byte("reply"))
	eventually(t, "the reply reaches the new address", 3*time.Second, func() bool { return inA.count() == 1 })
	res, err := a.ep.Reserve(ctxT(t, 3*time.Second), r.addr())
	if err != nil {
		t.Fatal(err)
	}
	if res.Observed() == before || res.Observed().Addr() != home.Addr() {
		t.Fatalf("relay sees a at %s, was %s", res.Observed(), before)
	}
	if r.ep.Stats().DroppedUnknown == 0 {
		t.Fatal("no datagram from the old circuit end was refused")
	}
}

// A Noise session runs through a circuit: the handshake and the data
// cross, and the relay forwards only ciphertext.
func TestNoiseSessionThroughCircuitShowsRelayOnlyCiphertext(t *testing.T) {
	rport := &tap{Port: loopPort(t)}
	r := newNode(t, rport, Config{Serve: true})
	a, b := newNode(t, nil, Config{}), newNode(t, nil, Config{})
	ca, cb := circuit(t, r, a, b)

	na, err := noise.New(a.key, a.port, noise.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer na.Close()
	nb, err := noise.New(b.key, b.port, noise.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	ca.SetHandler(func(p []byte) { na.HandleVia(p, ca) })
	cb.SetHandler(func(p []byte) { nb.HandleVia(p, cb) })

	secret := []byte("the relay must never read this line")
	sa, err := na.DialPath(ctxT(t, 10*time.Second), ca, b.key.ID(), nil)
	if err != nil {
		t.Fatalf("DialPath over the circuit: %v", err)
	}
	sb, err := nb.Accept(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if sb.RemotePeer() != a.key.ID() {
		t.Fatalf("b's session is with %s", sb.RemotePeer())
	}
	got := make(chan []byte, 1)
	sb.SetReceiver(func(p []byte) {
		select {
		case got <- append([]byte(nil), p...):
		default:
		}
	})
	if err := sa.Send(secret); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if !bytes.Equal(p, secret) {
			t.Fatalf("b got %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing arrived through the circuit")
	}
	if sb.RemoteAddr() != r.addr() {
		t.Fatalf("b's session sends to %s, want the relay %s", sb.RemoteAddr(), r.addr())
	}
	rport.mu.Lock()
	defer rport.mu.Unlock()
	forwarded := 0
	for _, p := range rport.sent {
		if _, _, err := ParseData(p); err == nil {
			forwarded++
			if bytes.Contains(p, secret) {
				t.Fatal("the relay forwarded plaintext")
			}
		}
	}
	if forwarded < 3 {
		t.Fatalf("the relay forwarded %d data packets", forwarded)
	}
}
