package community_test

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/discovery"
	"github.com/ipv8/go-ipv8/discovery/community"
	"github.com/ipv8/go-ipv8/discovery/community/sim"
	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/internal/netsim"
	"github.com/ipv8/go-ipv8/peer"
)

// testNet is a virtual-time network with helpers to place communities on
// public hosts and behind NATs.
type testNet struct {
	t       testing.TB
	n       *netsim.Network
	keys    *community.KeyCache
	cid     wire.CommunityID
	keyRand *rand.ChaCha8
	seed    uint64
}

func newTestNet(t testing.TB) *testNet {
	t.Helper()
	n := netsim.New(netsim.Config{Seed: 7, Virtual: true})
	t.Cleanup(func() { n.Close() })
	var cid wire.CommunityID
	copy(cid[:], "community test 12345")
	return &testNet{t: t, n: n, keys: community.NewKeyCache(256), cid: cid,
		keyRand: rand.NewChaCha8([32]byte{'t', 'e', 's', 't'})}
}

var wan = netsim.Link{Latency: 10 * time.Millisecond}

func (tn *testNet) key() *peer.PrivateKey {
	k, err := peer.GenerateKey(tn.keyRand)
	if err != nil {
		tn.t.Fatal(err)
	}
	return k
}

func (tn *testNet) on(h *netsim.Host, port uint16, cfg community.Config) *community.Community {
	tn.t.Helper()
	conn, err := h.ListenUDP(port)
	if err != nil {
		tn.t.Fatal(err)
	}
	if cfg.ID == (wire.CommunityID{}) {
		cfg.ID = tn.cid
	}
	if cfg.Key == nil {
		cfg.Key = tn.key()
	}
	tn.seed++
	cfg.Clock, cfg.Seed = tn.n.Clock(), tn.seed
	c, err := community.New(community.NewEndpoint(sim.NewPort(conn), tn.keys), cfg)
	if err != nil {
		tn.t.Fatal(err)
	}
	tn.t.Cleanup(func() { c.Close() })
	return c
}

// public starts a community on a public host.
func (tn *testNet) public(ip string, cfg community.Config) *community.Community {
	c := tn.on(tn.n.NewHost(netip.MustParseAddr(ip), wan), 8090, cfg)
	c.Start()
	return c
}

// behindNAT starts a community behind its own port-restricted NAT.
func (tn *testNet) behindNAT(natIP string, cfg community.Config) *community.Community {
	nat := tn.n.NewNAT(netip.MustParseAddr(natIP), netsim.NATConfig{
		Mapping: netsim.EndpointIndependent, Filtering: netsim.AddressAndPortDependent,
	}, wan)
	c := tn.on(nat.NewHost(netip.MustParseAddr("192.168.1.2"), netsim.Link{}), 8090, cfg)
	c.Start()
	return c
}

// tracker starts an answer-only community and returns its address.
func (tn *testNet) tracker(ip string) (*community.Community, netip.AddrPort) {
	h := tn.n.NewHost(netip.MustParseAddr(ip), wan)
	c := tn.on(h, 6421, community.Config{AnswerOnly: true, MaxPeers: -1})
	c.Start()
	return c, netip.AddrPortFrom(h.Addr(), 6421)
}

// raw opens a plain conn whose received packets are collected.
func (tn *testNet) raw(ip string, port uint16) (*netsim.Conn, *[]rawPkt) {
	h := tn.n.NewHost(netip.MustParseAddr(ip), wan)
	conn, err := h.ListenUDP(port)
	if err != nil {
		tn.t.Fatal(err)
	}
	got := &[]rawPkt{}
	conn.SetHandler(func(b []byte, from netip.AddrPort) { *got = append(*got, rawPkt{b, from}) })
	return conn, got
}

type rawPkt struct {
	b    []byte
	from netip.AddrPort
}

func (tn *testNet) run(d time.Duration) { tn.n.RunFor(d) }

func hasPeer(c *community.Community, mid discovery.Mid) (discovery.PeerInfo, bool) {
	for _, p := range c.Peers() {
		if p.Mid == mid {
			return p, true
		}
	}
	return discovery.PeerInfo{}, false
}

func simPort(c *netsim.Conn) *sim.Port { return sim.NewPort(c) }
