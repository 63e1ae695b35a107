package noise

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/security"
	"github.com/ipv8/go-ipv8/transport"
)

// earlyResult collects DialEarly's callback.
type earlyResult struct {
	once  sync.Once
	ch    chan struct{}
	other security.Session
	err   error
}

func newEarlyResult() *earlyResult { return &earlyResult{ch: make(chan struct{})} }

func (r *earlyResult) cb(other security.Session, err error) {
	r.once.Do(func() {
		r.other, r.err = other, err
		close(r.ch)
	})
}

func (r *earlyResult) wait(t *testing.T) (security.Session, error) {
	t.Helper()
	select {
	case <-r.ch:
		return r.other, r.err
	case <-time.After(10 * time.Second):
		t.Fatal("DialEarly's callback was not called")
		return nil, nil
	}
}

// holdResponses drops every response (message 2) from b to a until the
// returned function is called: the initiator's handshake stays open.
func holdResponses(n *fakeNet) (release func()) {
	var mu sync.Mutex
	var held []fakePacket
	holding := true
	n.setFilter(func(p *fakePacket) []fakePacket {
		mu.Lock()
		defer mu.Unlock()
		if holding && p.data[0] == transport.TypeNoiseResponse {
			held = append(held, *p)
			return nil
		}
		return []fakePacket{*p}
	})
	return func() {
		mu.Lock()
		holding = false
		h := held
		held = nil
		mu.Unlock()
		n.setFilter(nil)
		for _, p := range h {
			n.inject(p.from, p.to, p.data)
		}
	}
}

// What a DialEarly session sends before the handshake completes reaches the
// responder's session before the initiator has message 2: 0-RTT.
func TestEarlyDataArrivesBeforeHandshakeCompletes(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	release := holdResponses(n)
	res := newEarlyResult()
	sa, err := a.tr.DialEarly(ctxT(t, 10*time.Second), b.port.LocalAddr(), b.id(), res.cb)
	if err != nil {
		t.Fatal(err)
	}
	if sa.RemotePeer() != b.id() {
		t.Fatalf("early session is with %s", sa.RemotePeer())
	}
	for _, m := range []string{"request one", "request two"} {
		sent, err := sa.SendEarly([]byte(m))
		if !sent || err != nil {
			t.Fatalf("SendEarly(%q) = %v, %v", m, sent, err)
		}
	}
	sb := accept(t, b)
	ib := newInbox(sb)
	got := ib.waitN(t, 2)
	if string(got[0]) != "request one" || string(got[1]) != "request two" {
		t.Fatalf("responder got %q", got)
	}
	select {
	case <-res.ch:
		t.Fatal("the dial completed while message 2 was held")
	default:
	}
	if st := a.tr.Stats(); st.EarlySent != 2 {
		t.Fatalf("EarlySent = %d", st.EarlySent)
	}
	if st := b.tr.Stats(); st.EarlyReceived != 2 {
		t.Fatalf("EarlyReceived = %d", st.EarlyReceived)
	}

	release()
	if other, err := res.wait(t); err != nil || other != nil {
		t.Fatalf("dial ended with %v, %v", other, err)
	}
	// The session DialEarly returned is the established one.
	if sent, _ := sa.SendEarly([]byte("late")); sent {
		t.Fatal("SendEarly still sends 0-RTT after the handshake")
	}
	ia := newInbox(sa)
	if err := sa.Send([]byte("after")); err != nil {
		t.Fatal(err)
	}
	if got := ib.waitN(t, 3); string(got[2]) != "after" {
		t.Fatalf("third message %q", got[2])
	}
	sb.Send([]byte("reply"))
	if got := ia.waitN(t, 1); string(got[0]) != "reply" {
		t.Fatalf("initiator got %q", got[0])
	}
	d, err := a.tr.Dial(ctxT(t, 5*time.Second), b.port.LocalAddr(), b.id(), nil)
	if err != nil || d != security.Session(sa) {
		t.Fatalf("a later Dial returned %v (%v), not the early session", d, err)
	}
	n.settle()
	if k := b.tr.early.len(); k != 0 {
		t.Fatalf("responder keeps %d 0-RTT entries after the keys were confirmed", k)
	}
}

// A 0-RTT packet is delivered once: a replay of it is dropped.
func TestEarlyPacketReplayIsDropped(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	var mu sync.Mutex
	var early [][]byte
	n.mu.Lock()
	n.tap = func(p fakePacket) {
		if p.data[0] == transport.TypeNoiseData && Kind(p.data[1]) == KindEarly {
			mu.Lock()
			early = append(early, append([]byte(nil), p.data...))
			mu.Unlock()
		}
	}
	n.mu.Unlock()
	release := holdResponses(n)
	sa, err := a.tr.DialEarly(ctxT(t, 10*time.Second), b.port.LocalAddr(), b.id(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sent, err := sa.SendEarly([]byte("once")); !sent || err != nil {
		t.Fatal(sent, err)
	}
	sb := accept(t, b)
	ib := newInbox(sb)
	ib.waitN(t, 1)
	mu.Lock()
	pkt := early[0]
	mu.Unlock()
	for i := 0; i < 3; i++ {
		n.inject(a.port.LocalAddr(), b.port.LocalAddr(), pkt)
	}
	n.settle()
	if got := ib.count(); got != 1 {
		t.Fatalf("payload delivered %d times", got)
	}
	if d := b.tr.Stats().DroppedReplay; d != 3 {
		t.Fatalf("DroppedReplay = %d, want 3", d)
	}
	release()
}

// A 0-RTT packet whose bytes were altered, or that names an initiation the
// responder never answered, is dropped without effect.
func TestEarlyPacketTamperedOrUnknownIsDropped(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	n.setFilter(func(p *fakePacket) []fakePacket {
		switch {
		case p.data[0] == transport.TypeNoiseResponse:
			return nil // keep the handshake open: the packet below goes 0-RTT
		case p.data[0] == transport.TypeNoiseData && Kind(p.data[1]) == KindEarly:
			p.data[len(p.data)-20] ^= 1
		}
		return []fakePacket{*p}
	})
	sa, err := a.tr.DialEarly(ctxT(t, 10*time.Second), b.port.LocalAddr(), b.id(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sent, err := sa.SendEarly([]byte("tampered")); !sent || err != nil {
		t.Fatal(sent, err)
	}
	sb := accept(t, b)
	ib := newInbox(sb)
	n.settle()
	if ib.count() != 0 {
		t.Fatalf("a tampered 0-RTT packet was delivered: %q", ib.all())
	}
	if d := b.tr.Stats().DroppedAuth; d != 1 {
		t.Fatalf("DroppedAuth = %d", d)
	}
	// An index nobody initiated with.
	h := DataHeader{Kind: KindEarly, ReceiverIndex: 12345, Counter: 0}
	junk := append(h.Append(nil), make([]byte, 40)...)
	before := b.tr.Stats().DroppedUnknownIndex
	n.inject(a.port.LocalAddr(), b.port.LocalAddr(), junk)
	n.settle()
	if b.tr.Stats().DroppedUnknownIndex != before+1 {
		t.Fatal("a 0-RTT packet for an unknown index was not counted as such")
	}
}

// DialEarly to an ID whose key the responder does not hold fails (the
// responder refuses, the XX fallback proves another identity), closes the
// early session, and nothing sent early was delivered.
func TestEarlyDialWrongPeerFailsAndDeliversNothing(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	other := newKey(t).ID()
	res := newEarlyResult()
	sa, err := a.tr.DialEarly(ctxT(t, 10*time.Second), b.port.LocalAddr(), other, res.cb)
	if err != nil {
		t.Fatal(err)
	}
	sa.SendEarly([]byte("secret for the other peer"))
	if _, err := res.wait(t); !errors.Is(err, security.ErrWrongPeer) {
		t.Fatalf("dial ended with %v, want ErrWrongPeer", err)
	}
	select {
	case <-sa.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the early session was not closed")
	}
	if err := sa.Send([]byte("x")); !errors.Is(err, security.ErrSessionClosed) {
		t.Fatalf("Send on the failed early session: %v", err)
	}
	n.settle()
	if st := b.tr.Stats(); st.EarlyReceived != 0 {
		t.Fatalf("responder opened %d 0-RTT packets for a key it does not hold", st.EarlyReceived)
	}
}

// 0-RTT packets are delivered only within EarlyDataMaxAge of the
// initiation's timestamp, as early data in message 1 is.
func TestEarlyPacketsOfAnOldInitiationAreDropped(t *testing.T) {
	n := newFakeNet(t)
	ca, cb := newFakeClock(), newFakeClock()
	ca.Advance(-time.Minute) // the initiator's clock is a minute behind
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: ca})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: cb})
	// Message 2 never reaches a, so the data goes as 0-RTT however quick
	// the handshake is.
	n.setFilter(func(p *fakePacket) []fakePacket {
		if p.from == b.port.addr {
			return nil
		}
		return []fakePacket{*p}
	})
	sa, err := a.tr.DialEarly(ctxT(t, 10*time.Second), b.port.LocalAddr(), b.id(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := sa.SendEarly([]byte("stale")); !ok || err != nil {
		t.Fatalf("SendEarly: %v, %v", ok, err)
	}
	sb := accept(t, b)
	ib := newInbox(sb)
	n.settle()
	if ib.count() != 0 {
		t.Fatal("0-RTT data of an old initiation was delivered")
	}
	if b.tr.Stats().DroppedEarlyData == 0 {
		t.Fatal("not counted as DroppedEarlyData")
	}
}

// A dial sends at most maxEarlyPackets 0-RTT packets; what follows is sent
// once the keys are there.
func TestEarlyBudgetThenQueueUntilKeys(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	release := holdResponses(n)
	res := newEarlyResult()
	sa, err := a.tr.DialEarly(ctxT(t, 10*time.Second), b.port.LocalAddr(), b.id(), res.cb)
	if err != nil {
		t.Fatal(err)
	}
	total := maxEarlyPackets + 5
	for i := 0; i < total; i++ {
		msg := []byte{byte(i)}
		sent, err := sa.SendEarly(msg)
		if err != nil {
			t.Fatal(err)
		}
		if sent != (i < maxEarlyPackets) {
			t.Fatalf("packet %d: sent early = %v", i, sent)
		}
		if !sent {
			if err := sa.Send(msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	sb := accept(t, b)
	ib := newInbox(sb)
	ib.waitN(t, maxEarlyPackets)
	n.settle()
	if ib.count() != maxEarlyPackets {
		t.Fatalf("%d delivered before the handshake completed", ib.count())
	}
	release()
	res.wait(t)
	got := ib.waitN(t, total)
	for i, m := range got {
		if !bytes.Equal(m, []byte{byte(i)}) {
			t.Fatalf("payload %d is %v", i, m)
		}
	}
}

// DialEarly to a peer with a live session returns that session, which has
// nothing to send early.
func TestEarlyDialReusesLiveSession(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	sa, _ := pair(t, a, b, true)
	n.settle()
	res := newEarlyResult()
	se, err := a.tr.DialEarly(ctxT(t, 5*time.Second), b.port.LocalAddr(), b.id(), res.cb)
	if err != nil {
		t.Fatal(err)
	}
	if security.Session(se) != sa {
		t.Fatal("DialEarly made a new session beside a live one")
	}
	if other, err := res.wait(t); other != nil || err != nil {
		t.Fatalf("callback: %v, %v", other, err)
	}
	if sent, _ := se.SendEarly([]byte("x")); sent {
		t.Fatal("an established session sent 0-RTT")
	}
}

// The 0-RTT key is not message 1's payload key itself and both sides
// derive the same one.
func TestEarlyKeyIsDerivedNotReused(t *testing.T) {
	k := newAEADCipher(bytes.Repeat([]byte{7}, 32))
	e1, e2 := deriveEarlyKey(k), deriveEarlyKey(k)
	pt := []byte("payload")
	ct := e1.Encrypt(nil, 1, nil, pt)
	if got, err := e2.Decrypt(nil, 1, nil, ct); err != nil || !bytes.Equal(got, pt) {
		t.Fatal("two derivations from one key differ")
	}
	if _, err := k.Decrypt(nil, 1, nil, ct); err == nil {
		t.Fatal("the 0-RTT key is message 1's payload key")
	}
}

// 0-RTT does not loosen anti-amplification: before the initiator proved its
// address, the responder sends at most three times what arrived from it
// (the initiation and the 0-RTT packets), however much its session wants
// to send.
func TestEarlyDataKeepsAmplificationUnderThreeTimes(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	// Message 2 never reaches a: b's session stays unconfirmed.
	holdResponses(n)
	sa, err := a.tr.DialEarly(ctxT(t, 10*time.Second), b.port.LocalAddr(), b.id(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		sa.SendEarly(bytes.Repeat([]byte{byte(i)}, 100))
	}
	sb := accept(t, b)
	newInbox(sb).waitN(t, 3)
	for i := 0; i < 20; i++ {
		sb.Send(make([]byte, 100)) // 2 640 bytes of reply in all
	}
	n.settle()
	in := n.bytesSent(a.port.LocalAddr(), b.port.LocalAddr())
	out := n.bytesSent(b.port.LocalAddr(), a.port.LocalAddr())
	if out > 3*in {
		t.Fatalf("responder sent %d bytes to an unvalidated address that sent %d", out, in)
	}
	if out < 2*in {
		t.Fatalf("responder sent only %d of the %d bytes its budget allows: 0-RTT bytes were not credited", out, 3*in)
	}
}

// Two early dials to one peer share the session and the handshake, and a
// blocking Dial meanwhile waits for that handshake and returns the same
// session.
func TestConcurrentEarlyDialsShareOneSession(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	release := holdResponses(n)
	r1, r2 := newEarlyResult(), newEarlyResult()
	s1, err := a.tr.DialEarly(ctxT(t, 10*time.Second), b.port.LocalAddr(), b.id(), r1.cb)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := a.tr.DialEarly(ctxT(t, 10*time.Second), b.port.LocalAddr(), b.id(), r2.cb)
	if err != nil {
		t.Fatal(err)
	}
	if s1 != s2 {
		t.Fatal("two early dials made two sessions")
	}
	plain := dialAsync(t, a, b, true, nil)
	release()
	for _, r := range []*earlyResult{r1, r2} {
		if other, err := r.wait(t); other != nil || err != nil {
			t.Fatalf("early dial ended with %v, %v", other, err)
		}
	}
	if p := <-plain; p.err != nil || p.s != security.Session(s1) {
		t.Fatalf("blocking Dial: %v, same session %v", p.err, p.s == security.Session(s1))
	}
	if got := a.tr.Stats().HandshakesInitiated; got != 1 {
		t.Fatalf("%d handshakes", got)
	}
}

// Both sides dial early at once (as in hole punching): the lower ID's
// handshake wins; the other side's early session closes and its callback
// names the session the winner's handshake made, which is the one both
// sides then share.
func TestEarlyDialsCrossingEndInOneSession(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	// Hold everything until both initiations are out.
	var mu sync.Mutex
	var held []fakePacket
	holding := true
	n.setFilter(func(p *fakePacket) []fakePacket {
		mu.Lock()
		defer mu.Unlock()
		if holding {
			held = append(held, *p)
			return nil
		}
		return []fakePacket{*p}
	})
	ra, rb := newEarlyResult(), newEarlyResult()
	ea, err := a.tr.DialEarly(ctxT(t, 10*time.Second), b.port.LocalAddr(), b.id(), ra.cb)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := b.tr.DialEarly(ctxT(t, 10*time.Second), a.port.LocalAddr(), a.id(), rb.cb)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	holding = false
	h := held
	mu.Unlock()
	n.setFilter(nil)
	for _, p := range h {
		n.inject(p.from, p.to, p.data)
	}
	oa, erra := ra.wait(t)
	ob, errb := rb.wait(t)
	wEarly, lEarly, lOther, wErr, lErr := ea, eb, ob, erra, errb
	if idLess(b.id(), a.id()) {
		wEarly, lEarly, lOther, wErr, lErr = eb, ea, oa, errb, erra
	}
	if wErr != nil {
		t.Fatalf("the winner's early dial failed: %v", wErr)
	}
	if !errors.Is(lErr, errDialMerged) || lOther == nil {
		t.Fatalf("the loser's early dial ended with %v, %v", lOther, lErr)
	}
	select {
	case <-lEarly.Done():
	default:
		t.Fatal("the loser's early session is still open")
	}
	// The winner's early session and the loser's replacement are the two
	// ends of one session.
	iw, il := newInbox(wEarly), newInbox(lOther)
	wEarly.Send([]byte("from the winner"))
	lOther.Send([]byte("from the loser"))
	if got := il.waitN(t, 1); string(got[0]) != "from the winner" {
		t.Fatalf("loser got %q", got)
	}
	if got := iw.waitN(t, 1); string(got[0]) != "from the loser" {
		t.Fatalf("winner got %q", got)
	}
}
