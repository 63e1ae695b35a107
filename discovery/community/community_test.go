package community_test

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/discovery"
	"github.com/ipv8/go-ipv8/discovery/community"
	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/internal/netsim"
	"github.com/ipv8/go-ipv8/internal/pyvectors"
	"github.com/ipv8/go-ipv8/peer"
)

func TestTrackerIntroducesWalkersToEachOther(t *testing.T) {
	tn := newTestNet(t)
	tr, trAddr := tn.tracker("20.0.0.1")
	a := tn.public("21.0.0.1", community.Config{Bootstrap: []netip.AddrPort{trAddr}})
	b := tn.public("21.0.0.2", community.Config{Bootstrap: []netip.AddrPort{trAddr}})
	tn.run(5 * time.Second)

	pb, ok := hasPeer(a, b.Mid())
	if !ok {
		t.Fatalf("a did not verify b; a's peers: %v", a.Peers())
	}
	if _, ok := hasPeer(b, a.Mid()); !ok {
		t.Fatal("b did not verify a")
	}
	if pb.Addr != netip.MustParseAddrPort("21.0.0.2:8090") {
		t.Errorf("b's address %v", pb.Addr)
	}
	// The tracker is a bootstrap server: never a peer, but the introducer.
	if _, ok := hasPeer(a, tr.Mid()); ok {
		t.Error("the tracker was counted as a peer")
	}
	pa, _ := hasPeer(b, a.Mid())
	if pb.IntroducedBy != tr.Mid() && pa.IntroducedBy != tr.Mid() {
		t.Errorf("neither peer records the tracker as introducer: %s / %s", pb.IntroducedBy, pa.IntroducedBy)
	}
	// Peer IDs are derived from the key in the packets.
	if pb.ID != peer.IDFromPublicKey(pb.PublicKey) || pb.ID == "" {
		t.Errorf("peer ID %s does not match its key", pb.ID)
	}
	if pb.Mid != discovery.Mid(pb.PublicKey.Mid()) {
		t.Error("mid does not match key")
	}
}

func TestPunctureOpensPortRestrictedNATs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		puncture bool
	}{{"with puncture", true}, {"puncture disabled", false}} {
		t.Run(tc.name, func(t *testing.T) {
			tn := newTestNet(t)
			_, trAddr := tn.tracker("20.0.0.1")
			cfg := community.Config{Bootstrap: []netip.AddrPort{trAddr}, DisablePuncture: !tc.puncture}
			a := tn.behindNAT("31.0.0.1", cfg)
			b := tn.behindNAT("31.0.0.2", cfg)
			tn.run(20 * time.Second)
			_, ab := hasPeer(a, b.Mid())
			_, ba := hasPeer(b, a.Mid())
			if tc.puncture {
				if !ab || !ba {
					t.Fatalf("NATed hosts did not verify each other (a→b %t, b→a %t); a %+v", ab, ba, a.Stats())
				}
				if a.Stats().PuncturesSent == 0 && b.Stats().PuncturesSent == 0 {
					t.Fatal("no puncture was sent")
				}
				// They learnt their public addresses from the tracker's reports.
				if got := a.WANAddr(); got != netip.MustParseAddrPort("31.0.0.1:8090") {
					t.Errorf("a's WAN address %v", got)
				}
			} else {
				if ab || ba {
					t.Fatalf("NATed hosts met without puncture (a→b %t, b→a %t)", ab, ba)
				}
				if tn.n.Stats().Dropped(netsim.DropNATFiltered) == 0 {
					t.Fatal("expected the NATs to filter the walks")
				}
			}
		})
	}
}

func TestPeersAdvertisingNoiseAreMarked(t *testing.T) {
	tn := newTestNet(t)
	_, trAddr := tn.tracker("20.0.0.1")
	a := tn.public("21.0.0.1", community.Config{Bootstrap: []netip.AddrPort{trAddr}})
	goPeer := tn.public("21.0.0.2", community.Config{Bootstrap: []netip.AddrPort{trAddr}, Advertise: &wire.Advert{Flags: wire.CapNoise}})
	plain := tn.public("21.0.0.3", community.Config{Bootstrap: []netip.AddrPort{trAddr}})
	tn.run(10 * time.Second)
	pg, ok1 := hasPeer(a, goPeer.Mid())
	pp, ok2 := hasPeer(a, plain.Mid())
	if !ok1 || !ok2 {
		t.Fatalf("a's peers: %v", a.Peers())
	}
	if !pg.Noise || pp.Noise {
		t.Fatalf("noise flags: advertising peer %t, plain peer %t", pg.Noise, pp.Noise)
	}
	got, ok := a.Lookup(pg.ID)
	if !ok || got.Mid != goPeer.Mid() {
		t.Fatal("Lookup by peer ID failed")
	}
}

func TestBadSignatureIsDroppedAndCounted(t *testing.T) {
	tn := newTestNet(t)
	c := tn.public("21.0.0.1", community.Config{AnswerOnly: true})
	conn, got := tn.raw("21.0.0.9", 9000)
	signer := wire.NewSigner(tn.key())
	req := wire.IntroductionRequest{Destination: netip.MustParseAddrPort("21.0.0.1:8090"),
		SourceLAN: conn.LocalAddrPort(), SourceWAN: conn.LocalAddrPort(), Identifier: 7}
	payload, _ := req.Append(nil, false)
	pkt := signer.AppendSigned(nil, tn.cid, wire.MsgIntroductionRequest, 1, payload)

	bad := bytes.Clone(pkt)
	bad[len(bad)-1] ^= 0x80
	conn.WriteToUDPAddrPort(bad, netip.MustParseAddrPort("21.0.0.1:8090"))
	tn.run(time.Second)
	if s := c.Stats(); s.BadSignature != 1 || c.PeerCount() != 0 || len(*got) != 0 {
		t.Fatalf("bad signature: stats %+v, peers %d, answers %d", s, c.PeerCount(), len(*got))
	}

	conn.WriteToUDPAddrPort(pkt, netip.MustParseAddrPort("21.0.0.1:8090"))
	tn.run(time.Second)
	if c.PeerCount() != 1 || len(*got) != 1 {
		t.Fatalf("good signature: peers %d, answers %d", c.PeerCount(), len(*got))
	}
	s, err := wire.ParseSigned((*got)[0].b)
	if err != nil || s.MsgID != wire.MsgIntroductionResponse {
		t.Fatalf("answer: %v, msg %d", err, s.MsgID)
	}
	resp, err := wire.ParseIntroductionResponse(s.Payload, false)
	if err != nil || resp.Identifier != 7 || resp.Destination != conn.LocalAddrPort() {
		t.Fatalf("response %+v (%v)", resp, err)
	}
}

func TestAnswersPyIPv8IntroductionRequestVector(t *testing.T) {
	v := pyvectors.Must()
	tn := newTestNet(t)
	var cid wire.CommunityID
	copy(cid[:], v.Bytes("community_id"))
	h := tn.n.NewHost(netip.MustParseAddr("127.0.0.1"), wan)
	c := tn.on(h, 18091, community.Config{ID: cid, AnswerOnly: true})
	c.Start()
	conn, got := tn.raw("1.2.3.4", 18090)
	conn.WriteToUDPAddrPort(v.Bytes("introduction_request"), netip.MustParseAddrPort("127.0.0.1:18091"))
	tn.run(time.Second)

	k, _ := peer.NewKeyFromParts(v.Bytes("ed25519_seed"), v.Bytes("x25519_secret"))
	p, ok := hasPeer(c, discovery.Mid(k.Public().Mid()))
	if !ok {
		t.Fatalf("py-ipv8's requester not verified; stats %+v", c.Stats())
	}
	if p.LAN != netip.MustParseAddrPort("192.168.1.2:18090") || p.Noise {
		t.Errorf("peer %+v", p)
	}
	if len(*got) != 1 {
		t.Fatalf("%d answers", len(*got))
	}
	s, err := wire.ParseSigned((*got)[0].b)
	if err != nil {
		t.Fatal(err)
	}
	// The request said it supports the new style (flag 0x20): py-ipv8
	// answers those with message 233, and so does go-ipv8.
	if s.MsgID != wire.MsgNewIntroductionResponse {
		t.Fatalf("answered with message %d", s.MsgID)
	}
	resp, err := wire.ParseIntroductionResponse(s.Payload, true)
	if err != nil || resp.Identifier != 1 || resp.Destination != netip.MustParseAddrPort("1.2.3.4:18090") {
		t.Fatalf("response %+v (%v)", resp, err)
	}
}

type hello struct{ Text string }

func TestRegisteredPayloadIsDeliveredWithSender(t *testing.T) {
	tn := newTestNet(t)
	a := tn.public("21.0.0.1", community.Config{AnswerOnly: true})
	b := tn.public("21.0.0.2", community.Config{AnswerOnly: true})
	var got []string
	var from discovery.Mid
	if err := community.Register(b, 1, func(m *community.Message, v *hello) {
		got = append(got, v.Text)
		from = m.Mid
	}); err != nil {
		t.Fatal(err)
	}
	var unsigned []byte
	if err := b.Handle(2, false, func(m *community.Message) { unsigned = bytes.Clone(m.Payload) }); err != nil {
		t.Fatal(err)
	}
	if err := community.SendPayload(a, netip.MustParseAddrPort("21.0.0.2:8090"), 1, &hello{"hi"}); err != nil {
		t.Fatal(err)
	}
	if err := a.SendUnsigned(netip.MustParseAddrPort("21.0.0.2:8090"), 2, []byte("raw")); err != nil {
		t.Fatal(err)
	}
	// Message 3 has no handler: dropped and counted.
	a.Send(netip.MustParseAddrPort("21.0.0.2:8090"), 3, nil)
	tn.run(time.Second)
	if len(got) != 1 || got[0] != "hi" || from != a.Mid() || string(unsigned) != "raw" {
		t.Fatalf("got %q from %s, unsigned %q", got, from, unsigned)
	}
	if s := b.Stats(); s.Delivered != 2 || s.UnknownMessage != 1 {
		t.Fatalf("stats %+v", s)
	}
	if err := b.Handle(1, true, func(*community.Message) {}); !errors.Is(err, community.ErrHandlerExists) {
		t.Errorf("second handler: %v", err)
	}
	if err := b.Handle(246, true, func(*community.Message) {}); !errors.Is(err, community.ErrReservedID) {
		t.Errorf("reserved ID: %v", err)
	}
	if err := a.Send(netip.MustParseAddrPort("21.0.0.2:8090"), 250, nil); !errors.Is(err, community.ErrReservedID) {
		t.Errorf("send reserved ID: %v", err)
	}
}

func TestPeerLimitStopsAnsweringIntroductions(t *testing.T) {
	tn := newTestNet(t)
	c := tn.public("21.0.0.1", community.Config{AnswerOnly: true, MaxPeers: 2})
	for i := range 5 {
		conn, _ := tn.raw("21.0.1."+string(rune('1'+i)), 9000)
		signer := wire.NewSigner(tn.key())
		req := wire.IntroductionRequest{Destination: netip.MustParseAddrPort("21.0.0.1:8090"), Identifier: uint16(i)}
		payload, _ := req.Append(nil, false)
		conn.WriteToUDPAddrPort(signer.AppendSigned(nil, tn.cid, wire.MsgIntroductionRequest, 1, payload),
			netip.MustParseAddrPort("21.0.0.1:8090"))
		tn.run(100 * time.Millisecond)
	}
	// py-ipv8 answers while it has at most MaxPeers, so it ends at MaxPeers+1.
	if n := c.PeerCount(); n != 3 {
		t.Fatalf("%d peers, want 3", n)
	}
	if s := c.Stats(); s.PeerLimit != 2 || s.RequestsIn != 3 {
		t.Fatalf("stats %+v", s)
	}
}

func TestChurnDropsSilentPeerAfterPinging(t *testing.T) {
	tn := newTestNet(t)
	_, trAddr := tn.tracker("20.0.0.1")
	a := tn.public("21.0.0.1", community.Config{Bootstrap: []netip.AddrPort{trAddr}})
	b := tn.public("21.0.0.2", community.Config{Bootstrap: []netip.AddrPort{trAddr}})
	var removed []discovery.Event
	a.Subscribe(func(e discovery.Event) {
		if e.Kind == discovery.PeerRemoved {
			removed = append(removed, e)
		}
	})
	tn.run(5 * time.Second)
	if _, ok := hasPeer(a, b.Mid()); !ok {
		t.Fatal("a did not verify b")
	}
	b.Close()
	tn.run(20 * time.Second)
	if _, ok := hasPeer(a, b.Mid()); !ok {
		t.Fatal("b dropped before the inactivity time")
	}
	tn.run(60 * time.Second)
	if _, ok := hasPeer(a, b.Mid()); ok {
		t.Fatal("silent b still a peer after the drop time")
	}
	if len(removed) != 1 || removed[0].Peer.Mid != b.Mid() || a.Stats().Dropped != 1 {
		t.Fatalf("removal events %v, stats %+v", removed, a.Stats())
	}
}

func TestLivePeersSurviveChurn(t *testing.T) {
	tn := newTestNet(t)
	_, trAddr := tn.tracker("20.0.0.1")
	cfg := community.Config{Bootstrap: []netip.AddrPort{trAddr}, TargetPeers: 1}
	a := tn.public("21.0.0.1", cfg)
	b := tn.public("21.0.0.2", cfg)
	tn.run(3 * time.Minute)
	// Walking stopped at one peer; churn pings kept each alive.
	if _, ok := hasPeer(a, b.Mid()); !ok {
		t.Fatal("live peer dropped")
	}
	if a.Stats().Dropped != 0 {
		t.Fatalf("stats %+v", a.Stats())
	}
}

func TestGraphRecordsIntroductionsAndRTT(t *testing.T) {
	tn := newTestNet(t)
	tr, trAddr := tn.tracker("20.0.0.1")
	cfg := community.Config{Bootstrap: []netip.AddrPort{trAddr}}
	a := tn.public("21.0.0.1", cfg)
	var others []*community.Community
	for _, ip := range []string{"21.0.0.2", "21.0.0.3", "21.0.0.4"} {
		others = append(others, tn.public(ip, cfg))
	}
	tn.run(15 * time.Second)
	g := a.Graph()
	if g.Self != a.Mid() {
		t.Fatal("graph owner")
	}
	nodes := map[discovery.Mid]discovery.Node{}
	for _, n := range g.Nodes {
		nodes[n.Mid] = n
	}
	for _, o := range others {
		n, ok := nodes[o.Mid()]
		if !ok || !n.Verified {
			t.Fatalf("%s missing or unverified in graph", o.Mid())
		}
		// Both links are 10 ms one way: RTT 40 ms, plus processing 0.
		if n.RTT < 35*time.Millisecond || n.RTT > 60*time.Millisecond {
			t.Errorf("RTT to %s: %v", o.Mid(), n.RTT)
		}
	}
	if n, ok := nodes[tr.Mid()]; !ok || n.Verified {
		t.Errorf("tracker node %+v (present %t), want present and unverified", n, ok)
	}
	edges := 0
	for _, e := range g.Edges {
		if _, ok := nodes[e.From]; !ok {
			t.Errorf("edge from unknown node %s", e.From)
		}
		if e.To == a.Mid() {
			t.Error("edge to self")
		}
		edges++
	}
	if edges == 0 {
		t.Fatal("no introduction edges")
	}
}

func TestWalkStopsAtTargetPeers(t *testing.T) {
	tn := newTestNet(t)
	_, trAddr := tn.tracker("20.0.0.1")
	var cs []*community.Community
	for i := range 12 {
		cs = append(cs, tn.public("21.0.0."+itoa(i+1), community.Config{Bootstrap: []netip.AddrPort{trAddr}, TargetPeers: 3, MaxPeers: 5}))
	}
	tn.run(20 * time.Second)
	sent := cs[0].Stats().RequestsSent
	tn.run(10 * time.Second)
	// Beyond the target, only churn pings go out (none within 27.5 s of
	// the last contact, at most a couple per peer).
	if more := cs[0].Stats().RequestsSent - sent; more > 5 {
		t.Fatalf("%d requests sent after reaching the target", more)
	}
	for i, c := range cs {
		if n := c.PeerCount(); n < 3 || n > 6 {
			t.Errorf("host %d has %d peers", i, n)
		}
	}
}

func TestEdgeWalkFindsPeers(t *testing.T) {
	tn := newTestNet(t)
	_, trAddr := tn.tracker("20.0.0.1")
	var cs []*community.Community
	for i := range 30 {
		cs = append(cs, tn.public("21.0.0."+itoa(i+1), community.Config{Bootstrap: []netip.AddrPort{trAddr}, Strategy: community.EdgeWalk{}, TargetPeers: 10}))
	}
	tn.run(40 * time.Second)
	for i, c := range cs {
		if n := c.PeerCount(); n < 10 {
			t.Errorf("host %d has %d peers, want 10", i, n)
		}
	}
}

func TestLANDiscoveryFindsPeerWithoutTracker(t *testing.T) {
	// netsim has no broadcast: the LAN discovery address here is the
	// neighbour's unicast address, which exercises the same path (an
	// introduction request to a configured address, answered from the
	// peer's own address).
	tn := newTestNet(t)
	nat := tn.n.NewNAT(netip.MustParseAddr("31.0.0.1"), netsim.NATConfig{}, wan)
	hb := nat.NewHost(netip.MustParseAddr("192.168.1.3"), netsim.Link{})
	b := tn.on(hb, 8090, community.Config{AnswerOnly: true})
	b.Start()
	ha := nat.NewHost(netip.MustParseAddr("192.168.1.2"), netsim.Link{})
	a := tn.on(ha, 8090, community.Config{LANDiscovery: []netip.AddrPort{netip.MustParseAddrPort("192.168.1.3:8090")}})
	a.Start()
	tn.run(2 * time.Second)
	p, ok := hasPeer(a, b.Mid())
	if !ok || p.Addr != netip.MustParseAddrPort("192.168.1.3:8090") {
		t.Fatalf("LAN peer not found (%+v)", p)
	}
}

func TestGlobalTimeIsLamport(t *testing.T) {
	tn := newTestNet(t)
	c := tn.public("21.0.0.1", community.Config{AnswerOnly: true})
	if err := c.Handle(5, true, func(*community.Message) {}); err != nil {
		t.Fatal(err)
	}
	conn, _ := tn.raw("21.0.0.9", 9000)
	signer := wire.NewSigner(tn.key())
	dst := netip.MustParseAddrPort("21.0.0.1:8090")
	conn.WriteToUDPAddrPort(signer.AppendSigned(nil, tn.cid, 5, 1000, nil), dst)
	tn.run(time.Second)
	if gt := c.GlobalTime(); gt != 1000 {
		t.Fatalf("global time %d after a message at 1000", gt)
	}
	// A jump beyond 2^32 is not followed: a peer cannot exhaust the clock.
	conn.WriteToUDPAddrPort(signer.AppendSigned(nil, tn.cid, 5, 1<<60, nil), dst)
	tn.run(time.Second)
	if gt := c.GlobalTime(); gt != 1000 {
		t.Fatalf("global time %d after a message at 2^60", gt)
	}
}

func TestUnknownPeersCannotTriggerPunctures(t *testing.T) {
	tn := newTestNet(t)
	c := tn.public("21.0.0.1", community.Config{AnswerOnly: true})
	conn, _ := tn.raw("21.0.0.9", 9000)
	victim, got := tn.raw("21.0.0.66", 9000)
	pr := wire.PunctureRequest{WANWalker: victim.LocalAddrPort(), Identifier: 1}
	payload, _ := pr.Append(nil, false)
	for range 10 {
		conn.WriteToUDPAddrPort(wire.AppendUnsigned(nil, tn.cid, wire.MsgPunctureRequest, 1, payload), netip.MustParseAddrPort("21.0.0.1:8090"))
	}
	tn.run(time.Second)
	if len(*got) != 0 || c.Stats().PunctureIgnored != 10 {
		t.Fatalf("victim got %d punctures; stats %+v", len(*got), c.Stats())
	}
}

func TestTwoCommunitiesShareOnePort(t *testing.T) {
	tn := newTestNet(t)
	ha := tn.n.NewHost(netip.MustParseAddr("21.0.0.1"), wan)
	hb := tn.n.NewHost(netip.MustParseAddr("21.0.0.2"), wan)
	ca, _ := ha.ListenUDP(8090)
	cb, _ := hb.ListenUDP(8090)
	epA := community.NewEndpoint(simPort(ca), tn.keys)
	epB := community.NewEndpoint(simPort(cb), tn.keys)
	var id1, id2 wire.CommunityID
	id1[0], id2[0] = 1, 2
	ka, kb := tn.key(), tn.key()
	mk := func(ep *community.Endpoint, id wire.CommunityID, k *peer.PrivateKey) *community.Community {
		c, err := community.New(ep, community.Config{ID: id, Key: k, Clock: tn.n.Clock(), AnswerOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a1, a2 := mk(epA, id1, ka), mk(epA, id2, ka)
	b1, b2 := mk(epB, id1, kb), mk(epB, id2, kb)
	if _, err := community.New(epA, community.Config{ID: id1, Key: ka}); !errors.Is(err, community.ErrDuplicateCommunity) {
		t.Fatalf("duplicate community: %v", err)
	}
	var got1, got2 int
	b1.Handle(9, true, func(*community.Message) { got1++ })
	b2.Handle(9, true, func(*community.Message) { got2++ })
	a1.Send(netip.MustParseAddrPort("21.0.0.2:8090"), 9, nil)
	a2.Send(netip.MustParseAddrPort("21.0.0.2:8090"), 9, nil)
	a2.Send(netip.MustParseAddrPort("21.0.0.2:8090"), 9, nil)
	var id3 wire.CommunityID
	id3[0] = 3
	ca.WriteToUDPAddrPort(wire.AppendUnsigned(nil, id3, 1, 1, nil), netip.MustParseAddrPort("21.0.0.2:8090"))
	tn.run(time.Second)
	if got1 != 1 || got2 != 2 || epB.Stats().UnknownCommunity != 1 {
		t.Fatalf("community 1 got %d, community 2 got %d, unknown %d", got1, got2, epB.Stats().UnknownCommunity)
	}
}

func itoa(i int) string {
	return string([]byte{byte('0' + i/100%10), byte('0' + i/10%10), byte('0' + i%10)})[3-digits(i):]
}

func digits(i int) int {
	switch {
	case i >= 100:
		return 3
	case i >= 10:
		return 2
	}
	return 1
}
