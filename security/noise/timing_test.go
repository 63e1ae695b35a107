package noise

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/ipv8/go-ipv8/transport"
)

// keysZeroed reports whether both keys of kp are wiped: the AEADs encrypt
// under the all-zero key.
func keysZeroed(t *testing.T, kp *keypair) bool {
	t.Helper()
	zero, _ := chacha20poly1305.New(make([]byte, 32))
	var nonce [12]byte
	want := zero.Seal(nil, nonce[:], []byte("probe"), nil)
	for _, c := range []*aeadCipher{kp.send, kp.recv} {
		if got := c.aead.Seal(nil, nonce[:], []byte("probe"), nil); !bytes.Equal(got, want) {
			return false
		}
	}
	return kp.isWiped()
}

func TestRekeyAfterTimeWipesOldKeys(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	cfg := Config{Clock: clk, RekeyAfterTime: 10 * time.Second, RejectAfterTime: 40 * time.Second, KeepPreviousKeys: 2 * time.Second, HandshakeTimeout: 5 * time.Second}
	a := newNode(t, n, "10.0.0.1:1000", nil, cfg)
	b := newNode(t, n, "10.0.0.2:2000", nil, cfg)
	sa, sb := pair(t, a, b, true)
	ia, ib := newInbox(sa), newInbox(sb)
	sa.Send([]byte("before"))
	ib.waitN(t, 1)
	n.settle()
	oldA, oldB := sa.(*session).cur.Load(), sb.(*session).cur.Load()

	clk.Advance(11 * time.Second)
	if !oldA.rekeyDue.Load() {
		t.Fatal("keys not due for a rekey after RekeyAfterTime")
	}
	sa.Send([]byte("starts the rekey"))
	n.settle()
	newA, newB := sa.(*session).cur.Load(), sb.(*session).cur.Load()
	if newA == oldA || newB == oldB || newA.remoteIndex != newB.localIndex {
		t.Fatal("rekey did not install new keys on both sides")
	}
	if a.tr.Stats().Rekeys != 1 || b.tr.Stats().Rekeys != 1 || a.tr.Stats().HandshakesInitiated != 2 {
		t.Fatalf("a %+v\nb %+v", a.tr.Stats(), b.tr.Stats())
	}
	for i := 0; i < 5; i++ {
		sa.Send([]byte(fmt.Sprint("a", i)))
		sb.Send([]byte(fmt.Sprint("b", i)))
	}
	ib.waitN(t, 7)
	ia.waitN(t, 5)
	if keysZeroed(t, oldA) || keysZeroed(t, oldB) {
		t.Fatal("previous keys wiped before KeepPreviousKeys")
	}
	clk.Advance(3 * time.Second)
	if !keysZeroed(t, oldA) || !keysZeroed(t, oldB) {
		t.Fatal("old keys not zeroed after KeepPreviousKeys")
	}
	if _, ok := a.tr.indexes.get(oldA.localIndex); ok {
		t.Fatal("old keys' index still live")
	}
	sa.Send([]byte("after"))
	if got := ib.waitN(t, 8); string(got[7]) != "after" {
		t.Fatal("traffic did not continue")
	}
}

func TestRekeyAfterMessageCount(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	cfg := Config{Clock: clk, RekeyAfterMessages: 50, RejectAfterMessages: 1000, KeepPreviousKeys: time.Second}
	a := newNode(t, n, "10.0.0.1:1000", nil, cfg)
	b := newNode(t, n, "10.0.0.2:2000", nil, cfg)
	sa, sb := pair(t, a, b, true)
	ib := newInbox(sb)
	first := sa.(*session).cur.Load()
	for i := 0; i < 300; i++ {
		if err := sa.Send([]byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			n.settle()
		}
	}
	got := ib.waitN(t, 300)
	for i, m := range got {
		if string(m) != fmt.Sprint(i) {
			t.Fatalf("message %d is %q", i, m)
		}
	}
	if r := a.tr.Stats().Rekeys; r < 3 {
		t.Fatalf("%d rekeys for 300 packets at 50 per key", r)
	}
	clk.Advance(2 * time.Second)
	if !keysZeroed(t, first) {
		t.Fatal("first keys not wiped")
	}
}

func TestExpiredKeysRekeyAndQueue(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	cfg := Config{Clock: clk, RekeyAfterTime: 10 * time.Second, RejectAfterTime: 20 * time.Second}
	a := newNode(t, n, "10.0.0.1:1000", nil, cfg)
	b := newNode(t, n, "10.0.0.2:2000", nil, cfg)
	sa, sb := pair(t, a, b, true)
	ib := newInbox(sb)
	n.settle()
	// Nothing was sent: the dialler confirms its keys after confirmDelay
	// (in one 25-second jump the responder's 10-second wait for that would
	// end in the same instant).
	clk.Advance(confirmDelay)
	n.settle()
	old := sa.(*session).cur.Load()
	clk.Advance(25 * time.Second) // idle past RejectAfterTime: keys wiped
	if !keysZeroed(t, old) {
		t.Fatal("expired keys not wiped")
	}
	sb.Send([]byte("queued on b"))
	sa.Send([]byte("queued on a"))
	n.settle()
	ib.waitN(t, 1)
	ia := newInbox(sa)
	ia.waitN(t, 1)
}

func TestHandshakeRetransmitsWithBackoff(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	var sends []time.Time
	n.setFilter(func(p *fakePacket) []fakePacket {
		if p.data[0] == transport.TypeNoiseInitiation {
			sends = append(sends, clk.Now())
			if len(sends) <= 3 {
				return nil // lost
			}
		}
		return []fakePacket{*p}
	})
	ch := dialAsync(t, a, b, true, nil)
	eventually(t, "first initiation", func() bool { return a.tr.timers.len() == 1 })
	sent := func() int { n.mu.Lock(); defer n.mu.Unlock(); return len(sends) }
	for i := 0; sent() < 4; i++ {
		if i > 400 {
			t.Fatal("no fourth initiation")
		}
		clk.Advance(50 * time.Millisecond)
		n.settle()
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	n.setFilter(nil)
	n.mu.Lock()
	got := append([]time.Time(nil), sends...)
	n.mu.Unlock()
	if len(got) != 4 {
		t.Fatalf("%d initiations sent", len(got))
	}
	want := DefaultRetransmitInitial
	for i := 1; i < len(got); i++ {
		d := got[i].Sub(got[i-1])
		if d < want*9/10 || d > want*11/10 {
			t.Fatalf("retransmission %d after %v, want %v ±10%%", i, d, want)
		}
		want *= 2
	}
	if a.tr.Stats().Retransmissions != 3 {
		t.Fatalf("retransmissions %d", a.tr.Stats().Retransmissions)
	}
	accept(t, b)
}

func TestLostResponseAnsweredFromCache(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	lost := 0
	n.setFilter(func(p *fakePacket) []fakePacket {
		if p.data[0] == transport.TypeNoiseResponse && lost < 2 {
			lost++
			return nil
		}
		return []fakePacket{*p}
	})
	ch := dialAsync(t, a, b, true, []byte("once"))
	sb := accept(t, b)
	ib := newInbox(sb)
	for i := 0; i < 100; i++ {
		clk.Advance(100 * time.Millisecond)
		n.settle()
		if len(ch) == 1 {
			break
		}
	}
	r := <-ch
	if r.err != nil {
		t.Fatalf("%v\na %+v\nb %+v\nlost %d now %v timers %d", r.err, a.tr.Stats(), b.tr.Stats(), lost, clk.Now(), a.tr.timers.len())
	}
	n.settle()
	if got := ib.all(); len(got) != 1 {
		t.Fatalf("early data delivered %d times", len(got))
	}
	if st := b.tr.Stats(); st.HandshakesCompleted != 1 || st.Retransmissions != 2 {
		t.Fatalf("responder recomputed a handshake: %+v", st)
	}
	_ = context.Background
}
