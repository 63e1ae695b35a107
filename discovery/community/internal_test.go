package community

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/discovery"
	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/internal/pyvectors"
	"github.com/ipv8/go-ipv8/peer"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestPyIPv8ResponseVectorVerifiesAndIntroduces(t *testing.T) {
	v := pyvectors.Must()
	var cid wire.CommunityID
	copy(cid[:], v.Bytes("community_id"))
	key, _ := peer.NewKeyFromSeed(make([]byte, 32))
	port := &recPort{}
	c, err := New(NewEndpoint(port, NewKeyCache(8)), Config{ID: cid, Key: key, AnswerOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	port.h(v.Bytes("introduction_response"), ap("5.6.7.8:18091"))
	c.ep.Flush(t.Context())
	vk, _ := peer.NewKeyFromParts(v.Bytes("ed25519_seed"), v.Bytes("x25519_secret"))
	p, ok := c.Lookup(vk.ID())
	if !ok || p.Addr != ap("5.6.7.8:18091") || p.LAN != ap("192.168.1.3:18091") {
		t.Fatalf("responder not verified: %+v (%t)", p, ok)
	}
	c.mu.Lock()
	w := c.net.walk[ap("9.9.9.9:1001")]
	_, lanWalk := c.net.walk[ap("10.0.0.9:1000")]
	c.mu.Unlock()
	if w == nil || w.introducedBy != discovery.Mid(vk.Public().Mid()) {
		t.Fatalf("WAN introduction not walkable: %+v", w)
	}
	if lanWalk {
		t.Error("a LAN address outside our networks became walkable")
	}
	// The responder saw us at 1.2.3.4:18090: our WAN address now.
	if got := c.WANAddr(); got != ap("1.2.3.4:18090") {
		t.Errorf("WAN %v", got)
	}
}

func TestWANVoteTakesMajorityAndIgnoresPrivate(t *testing.T) {
	var w wanVote
	mid := func(i byte) discovery.Mid { return discovery.Mid{i} }
	w.add(mid(1), ap("192.168.1.5:1"))
	w.add(mid(2), ap("127.0.0.1:1"))
	if w.current().IsValid() {
		t.Fatalf("private reports counted: %v", w.current())
	}
	w.add(mid(1), ap("1.1.1.1:1"))
	w.add(mid(2), ap("1.1.1.1:1"))
	w.add(mid(3), ap("2.2.2.2:2"))
	if w.current() != ap("1.1.1.1:1") {
		t.Fatalf("majority %v", w.current())
	}
	// One peer changing its report many times has one vote.
	for range 5 {
		w.add(mid(3), ap("2.2.2.2:2"))
	}
	if w.current() != ap("1.1.1.1:1") {
		t.Fatalf("a single voter outvoted two: %v", w.current())
	}
	w.add(mid(4), ap("2.2.2.2:2"))
	w.add(mid(5), ap("2.2.2.2:2"))
	if w.current() != ap("2.2.2.2:2") {
		t.Fatalf("new majority not followed: %v", w.current())
	}
	for i := range 2 * maxVoters {
		w.add(mid(byte(10+i)), ap("3.3.3.3:3"))
	}
	if len(w.voters) != maxVoters || w.current() != ap("3.3.3.3:3") {
		t.Fatalf("%d voters, current %v", len(w.voters), w.current())
	}
}

func TestWalkableTableIsBoundedAndEvictsOldest(t *testing.T) {
	n := newNetwork(4)
	t0 := time.Unix(1000, 0)
	for i := range 6 {
		n.discover(netip.AddrPortFrom(netip.AddrFrom4([4]byte{8, 8, 8, byte(i)}), 1), discovery.Mid{1}, false, t0.Add(time.Duration(i)*time.Second))
	}
	if len(n.walkList) != 4 || len(n.walk) != 4 {
		t.Fatalf("%d walkable", len(n.walkList))
	}
	if n.walk[ap("8.8.8.0:1")] != nil || n.walk[ap("8.8.8.1:1")] != nil || n.walk[ap("8.8.8.5:1")] == nil {
		t.Fatal("the oldest were not the ones evicted")
	}
	// A blacklisted (bootstrap) address is never walkable.
	n.blacklist[ap("9.9.9.9:9")] = true
	if n.discover(ap("9.9.9.9:9"), discovery.Mid{1}, false, t0) {
		t.Fatal("bootstrap address became walkable")
	}
}

func TestVerifiedPeerMovesWithItsKey(t *testing.T) {
	n := newNetwork(8)
	k1, _ := peer.GenerateKey(nil)
	k2, _ := peer.GenerateKey(nil)
	m1, m2 := discovery.Mid(k1.Public().Mid()), discovery.Mid(k2.Public().Mid())
	now := time.Unix(1, 0)
	n.verify(k1.Public(), m1, ap("1.1.1.1:1"), now)
	p, added, _ := n.verify(k1.Public(), m1, ap("2.2.2.2:2"), now)
	if added || p.addr != ap("2.2.2.2:2") || n.byAddr[ap("1.1.1.1:1")] != nil || n.count() != 1 {
		t.Fatal("roaming peer not moved")
	}
	// Another identity at the same address replaces it.
	_, added, displaced := n.verify(k2.Public(), m2, ap("2.2.2.2:2"), now)
	if !added || displaced == nil || displaced.mid != m1 || n.count() != 1 || n.byMid[m1] != nil {
		t.Fatal("displaced peer not removed")
	}
}

func TestPunctureRateIsBounded(t *testing.T) {
	b := tokenBucket{rate: 10, burst: 20}
	now := time.Unix(0, 0)
	allowed := 0
	for range 100 {
		if b.allow(now) {
			allowed++
		}
	}
	if allowed != 20 {
		t.Fatalf("burst allowed %d", allowed)
	}
	if !b.allow(now.Add(150*time.Millisecond)) || b.allow(now.Add(150*time.Millisecond)) {
		t.Fatal("refill of 1.5 tokens")
	}
}

func TestHotKeysGetTablesWithinTheBound(t *testing.T) {
	kc := NewKeyCacheWith(KeyCacheConfig{Size: 16, Tables: 2, HotAfter: 3})
	clock := time.Unix(1000, 0)
	kc.now = func() time.Time { return clock }
	var cid wire.CommunityID
	type sender struct {
		pkt, bad wire.Signed
	}
	var senders []sender
	for i := range 4 {
		k, _ := peer.NewKeyFromSeed(append(make([]byte, 31), byte(i)))
		pkt := wire.NewSigner(k).AppendSigned(nil, cid, 1, 1, []byte("x"))
		good, _ := wire.ParseSigned(pkt)
		badPkt := append([]byte(nil), pkt...)
		badPkt[wire.HeaderSize+2+wire.KeySize+8] ^= 1 // payload byte
		bad, _ := wire.ParseSigned(badPkt)
		senders = append(senders, sender{good, bad})
	}
	tabled := func(i int) bool {
		e, _ := kc.entry(senders[i].pkt.KeyBin)
		return e.fv.Load() != nil
	}
	send := func(i, n int) {
		for range n {
			if _, err := kc.Verify(&senders[i].pkt); err != nil {
				t.Fatalf("sender %d: %v", i, err)
			}
			if _, err := kc.Verify(&senders[i].bad); err != wire.ErrBadSignature {
				t.Fatalf("sender %d: tampered packet gave %v", i, err)
			}
		}
	}
	// Two busy senders earn the two tables; a third, as busy, does not
	// take one (no trading between equals).
	send(0, 4)
	send(1, 4)
	send(2, 4)
	if !tabled(0) || !tabled(1) || tabled(2) {
		t.Fatalf("tables: %t %t %t", tabled(0), tabled(1), tabled(2))
	}
	// A second later senders 0 and 1 have gone quiet; sender 3 is busy
	// and takes the table of the coldest.
	clock = clock.Add(3 * time.Second)
	send(0, 1)
	send(3, 4)
	if !tabled(3) || tabled(1) || !tabled(0) || len(kc.tables) != 2 {
		t.Fatalf("after the shift: tables %t %t %t %t", tabled(0), tabled(1), tabled(2), tabled(3))
	}
	// A sender below the rate never gets one, however long it goes on.
	for range 10 {
		clock = clock.Add(2 * time.Second)
		send(2, 1)
	}
	if tabled(2) {
		t.Fatal("a slow sender earned a table")
	}
}
