package labtest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	ipv8 "github.com/ipv8/go-ipv8"
	"github.com/ipv8/go-ipv8/host"
	"github.com/ipv8/go-ipv8/nat/natlab"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
)

// host builds a go-ipv8 Host with ipv8.New whose port (and birthday
// sockets) live in namespace ns.
func (l *lab) host(t *testing.T, ns string, addr netip.AddrPort, opts ...ipv8.Option) *host.Host {
	t.Helper()
	if !addr.IsValid() {
		addr = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	}
	var c *net.UDPConn
	if err := l.In(ns, func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	aux := l.auxSockets(ns)
	h, err := ipv8.New(append([]ipv8.Option{ipv8.WithPacketConn(c), ipv8.PunchSockets(aux)}, opts...)...)
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// The root package's TestRelayedConnMovesToDirectWhileStreamRuns and
// TestRelayedConnStaysRelayedWhenPunchingFails with real NATs: two hosts
// built with ipv8.New behind Linux NATs, both with ipv8.Relays of a relay
// host (ipv8.New with RelayServiceLimits) beside the lab's STUN servers. A
// dials B knowing only B's ID and relayed address; a stream starts on the
// relay and the Host punches over the circuit. Where the NATs allow it the
// same Conn moves to the direct path on both sides (port-restricted pair:
// a direct punch; port-restricted against symmetric: a birthday punch,
// through the hard side's extra sockets); where they do not (both map per
// destination with random ports) it stays relayed. The stream arrives
// byte-exact either way.
func TestHostRelayedConnInLab(t *testing.T) {
	mib := int64(envInt("IPV8_NATLAB_UPGRADE_MIB", 64))
	for _, tc := range []struct {
		name       string
		a, b       natlab.Kind
		wantDirect bool
		size       int64
	}{
		{"port-restricted pair: direct punch", natlab.PortRestricted, natlab.PortRestricted, true, mib << 20},
		{"port-restricted and symmetric: birthday punch", natlab.PortRestricted, natlab.Symmetric, true, mib << 20},
		{"symmetric and address-dependent: relayed", natlab.Symmetric, natlab.AddrDependent, false, 16 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) { hostRelayedConnInLab(t, tc.a, tc.b, tc.wantDirect, tc.size) })
	}
}

func hostRelayedConnInLab(t *testing.T, kindA, kindB natlab.Kind, wantDirect bool, size int64) {
	l := newLab(t, []natlab.NAT{{Name: "na", Kind: kindA}, {Name: "nb", Kind: kindB}})
	relayAt := netip.AddrPortFrom(natlab.Spare1, 4100)
	r := l.host(t, l.ServerNS(), relayAt, ipv8.RelayServiceLimits(labLimits))
	relayMA := fmt.Sprintf("/ip4/%s/udp/%d/ipv8/p2p/%s", relayAt.Addr(), relayAt.Port(), r.ID())
	// The hosts learn their mapping from the lab's STUN servers at two IPs
	// (the relay alone would leave it unknown).
	stuns := []string{stunServers[0].String(), stunServers[2].String()}
	a := l.host(t, l.ClientNS("na"), netip.AddrPort{}, ipv8.Relays(relayMA), ipv8.STUNServers(stuns...))
	b := l.host(t, l.ClientNS("nb"), netip.AddrPort{}, ipv8.Relays(relayMA), ipv8.STUNServers(stuns...))

	received := make(chan int64, 1)
	var got [32]byte
	var n int64
	b.SetStreamHandler(bulkProtocol, func(s transport.Stream) {
		defer s.Close()
		h := sha256.New()
		n, _ = io.Copy(h, s)
		copy(got[:], h.Sum(nil))
		received <- n
	})
	ctx := ctxT(t, 3*time.Minute)
	var bAddr ma.Multiaddr
	for bAddr == nil {
		for _, m := range b.Addrs() {
			if _, err := m.ValueForProtocol(ma.P_CIRCUIT); err == nil {
				bAddr = m
			}
		}
		if bAddr == nil {
			select {
			case <-ctx.Done():
				t.Fatalf("B advertises no relayed address: %v", b.Addrs())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	subA, subB := a.Subscribe(16), b.Subscribe(16)
	defer subA.Close()
	defer subB.Close()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: []ma.Multiaddr{bAddr}}); err != nil {
		t.Fatal(err)
	}
	s, err := a.NewStream(ctx, b.ID(), bulkProtocol)
	if err != nil {
		t.Fatal(err)
	}
	conn := s.Conn()
	if p := conn.Stats().Path; p != transport.PathRelayed {
		t.Fatalf("the stream opened on a %s path: A knew only B's relayed address", p)
	}
	want := sha256.New()
	sent := make(chan error, 1)
	var sentBytes atomic.Int64
	// moved is set once both sides are on the direct path. Where that is
	// expected the stream goes on past size until it is (up to 4× size), so
	// that a punch slowed by a loaded machine (a birthday punch sends
	// hundreds of probes) still finds the stream running.
	var moved atomic.Bool
	go func() {
		// Paced at 24 MiB/s: the lab's links have no delay and no rate
		// limit, and an unpaced stream would be over (on the relay)
		// before the punch, which asks STUN first, is done.
		const rate = 24 << 20
		start := time.Now()
		src := rand.NewChaCha8([32]byte{5})
		buf := make([]byte, 256<<10)
		for done := int64(0); done < size || wantDirect && !moved.Load() && done < 4*size; {
			pace(start, done, rate)
			k := len(buf)
			src.Read(buf[:k])
			want.Write(buf[:k])
			if _, err := s.Write(buf[:k]); err != nil {
				sent <- err
				return
			}
			done += int64(k)
			sentBytes.Store(done)
		}
		sent <- s.CloseWrite()
	}()
	var movedAt int64
	if wantDirect {
		for _, sub := range []*host.Subscription{subA, subB} {
			ev := labPathEvent(t, ctx, sub, &sentBytes)
			if ev.Path != transport.PathDirect {
				t.Fatalf("moved to %s", ev.Path)
			}
			if sub == subA {
				if ev.Conn != conn {
					t.Fatal("the move is reported for another Conn")
				}
			} else {
				movedAt = sentBytes.Load() // both sides have moved
				moved.Store(true)
			}
		}
	}
	if err := <-sent; err != nil {
		t.Fatalf("sending: %v", err)
	}
	select {
	case <-received:
	case <-ctx.Done():
		t.Fatal("B did not receive the whole stream")
	}
	s.Close()
	total := sentBytes.Load()
	if wantDirect {
		t.Logf("%.2f MiB; both sides on the direct path with %.2f MiB sent; A sends to %s", float64(total)/(1<<20), float64(movedAt)/(1<<20), conn.RemoteMultiaddr())
	} else {
		t.Logf("%d MiB over the relay; A sends to %s", total>>20, conn.RemoteMultiaddr())
	}
	if n != total || total < size || [32]byte(want.Sum(nil)) != got {
		t.Fatalf("B received %d of %d bytes (at least %d to send); byte-exact: %v", n, total, size, [32]byte(want.Sum(nil)) == got)
	}
	if a.Conn(b.ID()) != conn {
		t.Fatal("A's Conn to B was replaced")
	}
	if wantDirect && movedAt >= total {
		t.Fatalf("B's Conn moved only after the whole stream was sent")
	}
	if !wantDirect {
		select {
		case e := <-subA.C:
			if pe, ok := e.(host.EvtPeerPathChanged); ok {
				t.Fatalf("the Conn moved to %s: these NATs cannot be punched", pe.Path)
			}
		default:
		}
		if conn.Stats().Path != transport.PathRelayed {
			t.Fatalf("the Conn is on %s", conn.Stats().Path)
		}
		return
	}
	if conn.Stats().Path != transport.PathDirect || b.Conn(a.ID()).Stats().Path != transport.PathDirect {
		t.Fatalf("at the end: A on %s, B on %s", conn.Stats().Path, b.Conn(a.ID()).Stats().Path)
	}
	if ap, _, err := transport.ToAddrPort(conn.RemoteMultiaddr()); err != nil || ap.Addr() != l.RouterWAN("nb") {
		t.Fatalf("A sends to %v, want B's router %s", conn.RemoteMultiaddr(), l.RouterWAN("nb"))
	}
}

// labPathEvent waits for the next EvtPeerPathChanged on sub.
func labPathEvent(t *testing.T, ctx context.Context, sub *host.Subscription, sent *atomic.Int64) host.EvtPeerPathChanged {
	t.Helper()
	for {
		select {
		case e := <-sub.C:
			if pe, ok := e.(host.EvtPeerPathChanged); ok {
				return pe
			}
		case <-ctx.Done():
			t.Fatalf("no move to the direct path (A sent %d bytes)", sent.Load())
		}
	}
}
