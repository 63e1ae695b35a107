package noise

import (
	"testing"
	"time"
	"unsafe"
)

// TestConfirmedResponderForgetsHandshake: once the initiator's first
// packet confirms the keys, the responder's session no longer reaches the
// handshake that made them (its response, kept for retransmission, and its
// timer), so an idle session does not carry it; the session still works
// both ways.
func TestConfirmedResponderForgetsHandshake(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	sa, sb := pair(t, a, b, true)
	inB, inA := newInbox(sb), newInbox(sa)
	if err := sa.Send([]byte("confirm")); err != nil {
		t.Fatal(err)
	}
	inB.waitN(t, 1)
	s := sb.(*session)
	eventually(t, "the responder's keys to be confirmed", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.confirmed
	})
	s.mu.Lock()
	kp := s.cur.Load()
	held := kp.inbound
	s.mu.Unlock()
	if held != nil {
		t.Fatal("the confirmed keypair still holds its inbound handshake")
	}
	b.tr.mu.Lock()
	half := len(b.tr.inbound)
	b.tr.mu.Unlock()
	if half != 0 {
		t.Fatalf("%d inbound handshakes left after confirmation", half)
	}
	if err := sb.Send([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	if got := inA.waitN(t, 1); string(got[0]) != "reply" {
		t.Fatalf("got %q", got[0])
	}
}

// TestSessionDoneMadeOnDemand: a session nobody waited on holds no Done
// channel; Done asked after the close is already closed, Done asked before
// it is closed by it, and Closed tells either way.
func TestSessionDoneMadeOnDemand(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	sa, sb := pair(t, a, b, true)
	for _, s := range []*session{sa.(*session), sb.(*session)} {
		s.mu.Lock()
		held := s.done != nil
		s.mu.Unlock()
		if held {
			t.Fatal("a session nobody waited on made its Done channel")
		}
	}
	waiting := sb.Done()
	if sa.(*session).Closed() || sb.(*session).Closed() {
		t.Fatal("Closed before the close")
	}
	sa.Close()
	select {
	case <-sa.Done():
	default:
		t.Fatal("Done asked after Close is not closed")
	}
	if !sa.(*session).Closed() {
		t.Fatal("Closed false after Close")
	}
	select {
	case <-waiting: // the peer's CLOSE ends b's session
	case <-time.After(10 * time.Second):
		t.Fatal("Done asked before the close was not closed by it")
	}
	if !sb.(*session).Closed() {
		t.Fatal("Closed false after the peer closed")
	}
}

// TestIdleSessionStructsFitTheirBudget guards the sizes that decide what
// an idle session costs (the budget is 4 KiB a session for the
// whole stack): a session of 320 bytes and its one keypair of 384 (each
// an allocation size class), with the replay window's 2048 packets.
func TestIdleSessionStructsFitTheirBudget(t *testing.T) {
	if n := unsafe.Sizeof(session{}); n > 320 {
		t.Errorf("session is %d bytes, budget 320", n)
	}
	if n := unsafe.Sizeof(keypair{}); n > 384 {
		t.Errorf("keypair is %d bytes, budget 384", n)
	}
	if ReplayWindow < 2048 {
		t.Errorf("replay window %d, at least 2048 required", ReplayWindow)
	}
}
