package noise

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"unsafe"

	"github.com/ipv8/go-ipv8/transport"
)

// wireTap records the flags of the data packets a fakeNet carries, by
// sender address.
type wireTap struct {
	mu    sync.Mutex
	flags map[netip.AddrPort][]uint8
}

func tapFlags(n *fakeNet) *wireTap {
	w := &wireTap{flags: make(map[netip.AddrPort][]uint8)}
	n.mu.Lock()
	n.tap = func(p fakePacket) {
		if len(p.data) >= DataHeaderLen && p.data[0] == transport.TypeNoiseData && Kind(p.data[1]) == KindData {
			w.mu.Lock()
			w.flags[p.from] = append(w.flags[p.from], p.data[2])
			w.mu.Unlock()
		}
	}
	n.mu.Unlock()
	return w
}

// count returns how many data packets from addr carried all of flags, and
// how many there were.
func (w *wireTap) count(from netip.AddrPort, flags uint8) (with, all int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range w.flags[from] {
		if f&flags == flags {
			with++
		}
	}
	return with, len(w.flags[from])
}

// sendNumbered sends n distinct payloads from s and checks that in gets
// exactly them, in order (the fakeNet keeps order).
func sendNumbered(t *testing.T, s interface{ Send([]byte) error }, in *inbox, n int) {
	t.Helper()
	start := in.count()
	for i := range n {
		if err := s.Send(fmt.Appendf(nil, "payload %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	got := in.waitN(t, start+n)[start:]
	for i, b := range got {
		if want := fmt.Sprintf("payload %d", i); string(b) != want {
			t.Fatalf("payload %d arrived as %q", i, b)
		}
	}
}

// Two ends with hardware AES move bulk traffic with AES-256-GCM after the
// first aesAfterPackets packets, in both directions, and every payload
// arrives intact. Without hardware AES they stay on ChaCha20-Poly1305.
func TestBulkTrafficSwitchesToAESGCM(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	sa, sb := pair(t, a, b, true)
	ia, ib := newInbox(sa), newInbox(sb)
	// Each end learns that the other opens AES-GCM from a packet it
	// receives; let one go each way before the bulk.
	sendNumbered(t, sa, ib, 1)
	sendNumbered(t, sb, ia, 1)
	n.settle()
	w := tapFlags(n)
	const pkts = 3 * aesAfterPackets
	sendNumbered(t, sa, ib, pkts)
	sendNumbered(t, sb, ia, pkts)
	n.settle()
	for _, from := range []netip.AddrPort{a.port.LocalAddr(), b.port.LocalAddr()} {
		withAES, all := w.count(from, FlagAESGCM)
		offered, _ := w.count(from, FlagOpensAESGCM)
		if !aesGCMUsable {
			if withAES != 0 || offered != 0 {
				t.Fatalf("%s: no hardware AES, yet %d packets sealed with AES-GCM and %d offer it", from, withAES, offered)
			}
			continue
		}
		if offered != all {
			t.Fatalf("%s: %d of %d packets offer AES-GCM, want all", from, offered, all)
		}
		// The packets with counters below aesAfterPackets (a handshake
		// confirmation and the first payload took two or three) stay on
		// ChaCha20-Poly1305, and every one after them is AES-GCM.
		if withAES < all-aesAfterPackets || withAES > all-aesAfterPackets+4 {
			t.Fatalf("%s: %d of %d packets sealed with AES-GCM, want all but the first %d", from, withAES, all, aesAfterPackets)
		}
		w.mu.Lock()
		seq := w.flags[from]
		for i := all - withAES; i < all; i++ {
			if seq[i]&FlagAESGCM == 0 {
				w.mu.Unlock()
				t.Fatalf("%s: packet %d went back to ChaCha20-Poly1305", from, i)
			}
		}
		w.mu.Unlock()
	}
	if !aesGCMUsable {
		t.Log("no hardware AES-GCM here: checked the ChaCha20-Poly1305 path only")
	}
}

// An end with DisableAESGCM never offers AES-GCM, so its peer never seals
// with it, and both directions stay on ChaCha20-Poly1305.
func TestDisableAESGCMKeepsChaChaBothWays(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{DisableAESGCM: true})
	sa, sb := pair(t, a, b, true)
	ia, ib := newInbox(sa), newInbox(sb)
	w := tapFlags(n)
	sendNumbered(t, sa, ib, 2*aesAfterPackets)
	sendNumbered(t, sb, ia, 2*aesAfterPackets)
	n.settle()
	if withAES, _ := w.count(a.port.LocalAddr(), FlagAESGCM); withAES != 0 {
		t.Fatalf("a sealed %d packets with AES-GCM for a peer that never offered it", withAES)
	}
	if offered, _ := w.count(b.port.LocalAddr(), FlagOpensAESGCM); offered != 0 {
		t.Fatalf("b offered AES-GCM in %d packets with DisableAESGCM", offered)
	}
	if withAES, _ := w.count(b.port.LocalAddr(), FlagAESGCM); withAES != 0 {
		t.Fatalf("b sealed %d packets with AES-GCM", withAES)
	}
}

// sessionKeys returns the current keypair of a session.
func sessionKeys(t *testing.T, s any) *keypair {
	t.Helper()
	kp := s.(*session).cur.Load()
	if kp == nil {
		t.Fatal("session has no keys")
	}
	return kp
}

// A packet sealed with AES-GCM reaches an end that never offered it: it
// is dropped (counted as failing authentication), not opened.
func TestAESGCMPacketRefusedWhereNotOffered(t *testing.T) {
	if !aesGCMUsable {
		t.Skip("no hardware AES-GCM: the sender cannot make the packet")
	}
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{DisableAESGCM: true})
	sa, sb := pair(t, a, b, true)
	ib := newInbox(sb)
	sendNumbered(t, sa, ib, 1)
	n.settle()
	kp := sessionKeys(t, sa)
	kp.peerAES.Store(true) // as if b had offered it
	var nonce [12]byte
	pkt, ok := kp.seal(nil, &nonce, KindData, aesAfterPackets+1, []byte("forced AES-GCM"), true)
	if !ok || pkt[2]&FlagAESGCM == 0 {
		t.Fatalf("could not seal a test packet with AES-GCM (flags %#x)", pkt[2])
	}
	before := b.tr.Stats()
	n.inject(a.port.LocalAddr(), b.port.LocalAddr(), pkt)
	n.settle()
	if ib.count() != 1 {
		t.Fatal("b delivered an AES-GCM packet it never offered to open")
	}
	if got := b.tr.Stats().DroppedAuth - before.DroppedAuth; got != 1 {
		t.Fatalf("DroppedAuth grew by %d, want 1", got)
	}
}

// The flags are in the header, which the AEAD authenticates: flipping
// either bit of a valid packet (which would change the cipher, or lie
// about the sender) makes it fail authentication.
func TestFlippedDataFlagsFailAuthentication(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	sa, sb := pair(t, a, b, true)
	ib := newInbox(sb)
	sendNumbered(t, sa, ib, 1)
	n.settle()
	kp := sessionKeys(t, sa)
	for i, flip := range []uint8{FlagAESGCM, FlagOpensAESGCM} {
		var nonce [12]byte
		pkt, ok := kp.seal(nil, &nonce, KindData, kp.sendCounter.Add(1)-1, []byte("genuine"), true)
		if !ok {
			t.Fatal("seal failed")
		}
		pkt[2] ^= flip
		before := b.tr.Stats().DroppedAuth
		n.inject(a.port.LocalAddr(), b.port.LocalAddr(), pkt)
		n.settle()
		if ib.count() != 1 {
			t.Fatalf("flip %d: a packet with altered flags was delivered", i)
		}
		if got := b.tr.Stats().DroppedAuth - before; got != 1 {
			t.Fatalf("flip %d: DroppedAuth grew by %d, want 1", i, got)
		}
	}
}

// A keypair seals with AES-GCM only within its limit: from aesRekeyAfter
// packets it asks for a rekey, and from aesMaxPackets it falls back to
// ChaCha20-Poly1305 (the peer still opens those).
func TestAESGCMLimitRekeysThenFallsBack(t *testing.T) {
	if !aesGCMUsable {
		t.Skip("no hardware AES-GCM")
	}
	kp := testKeypair(t)
	kp.peerAES.Store(true)
	var nonce [12]byte
	cases := []struct {
		ctr      uint64
		aes, due bool
	}{
		{0, false, false},
		{aesAfterPackets - 1, false, false},
		{aesAfterPackets, true, false},
		{aesRekeyAfter - 1, true, false},
		{aesRekeyAfter, true, true},
		{aesMaxPackets - 1, true, true},
		{aesMaxPackets, false, true},
	}
	for _, c := range cases {
		pkt, ok := kp.seal(nil, &nonce, KindData, c.ctr, []byte("x"), true)
		if !ok {
			t.Fatal("seal failed")
		}
		if got := pkt[2]&FlagAESGCM != 0; got != c.aes {
			t.Errorf("counter %d: sealed with AES-GCM %v, want %v", c.ctr, got, c.aes)
		}
		if got := kp.rekeyDue.Load(); got != c.due {
			t.Errorf("counter %d: rekey due %v, want %v", c.ctr, got, c.due)
		}
		// The other end opens it either way.
		h, n, err := ParseDataHeader(pkt)
		if err != nil {
			t.Fatal(err)
		}
		peer := &keypair{recv: kp.send}
		if pt, err := peer.open(nil, &nonce, &h, pkt[:n], pkt[n:], true); err != nil || string(pt) != "x" {
			t.Errorf("counter %d: open: %q, %v", c.ctr, pt, err)
		}
	}
}

func testKeypair(t *testing.T) *keypair {
	t.Helper()
	k1, k2 := make([]byte, keyLen), make([]byte, keyLen)
	rand.Read(k1)
	rand.Read(k2)
	return &keypair{send: newAEADCipher(k1), recv: newAEADCipher(k2), remoteIndex: 7}
}

// Wiping a keypair that sealed with AES-GCM zeroes the AES-GCM state (key
// schedule and GHASH table) as well as the ChaCha20-Poly1305 key and the
// copy kept to derive the AES key.
func TestWipeZeroesAESGCMState(t *testing.T) {
	if !aesGCMUsable {
		t.Skip("no hardware AES-GCM")
	}
	kp := testKeypair(t)
	kp.peerAES.Store(true)
	var nonce [12]byte
	if pkt, _ := kp.seal(nil, &nonce, KindData, aesAfterPackets, []byte("x"), true); pkt[2]&FlagAESGCM == 0 {
		t.Fatal("did not seal with AES-GCM")
	}
	g := *kp.send.gcm.Load()
	state := unsafe.Slice((*byte)(unsafe.Pointer(reflect.ValueOf(g).Pointer())), reflect.TypeOf(g).Elem().Size())
	if bytes.Count(state, []byte{0}) == len(state) {
		t.Fatal("AES-GCM state is all zeros before the wipe")
	}
	kp.wipe()
	if bytes.Count(state, []byte{0}) != len(state) {
		t.Fatal("AES-GCM state not zeroed by wipe")
	}
	if kp.send.key != [keyLen]byte{} || kp.recv.key != [keyLen]byte{} {
		t.Fatal("the transport keys kept for AES-GCM were not zeroed")
	}
	if _, ok := kp.seal(nil, &nonce, KindData, aesAfterPackets+1, []byte("x"), true); ok {
		t.Fatal("a wiped keypair sealed")
	}
}

// The AES-GCM key differs from the ChaCha20-Poly1305 key it comes from and
// between the two directions.
func TestAESGCMKeyIsDerivedPerDirection(t *testing.T) {
	if !aesGCMUsable {
		t.Skip("no hardware AES-GCM")
	}
	kp := testKeypair(t)
	var nonce [12]byte
	pt, ad := []byte("same plaintext"), []byte("ad")
	putNonce(&nonce, 1)
	chacha := kp.send.aead.Seal(nil, nonce[:], pt, ad)
	sendGCM := kp.send.aesGCM().Seal(nil, nonce[:], pt, ad)
	recvGCM := kp.recv.aesGCM().Seal(nil, nonce[:], pt, ad)
	if bytes.Equal(chacha, sendGCM) || bytes.Equal(sendGCM, recvGCM) {
		t.Fatal("AES-GCM keys are not distinct")
	}
	if _, err := kp.recv.aesGCM().Open(nil, nonce[:], sendGCM, ad); err == nil {
		t.Fatal("one direction's AES-GCM key opened the other's packet")
	}
}
