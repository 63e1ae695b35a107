package noise

import (
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/transport"
)

// kindTap records the kinds of the transport packets a node sends, in
// wire order.
type kindTap struct {
	mu    sync.Mutex
	kinds []Kind
}

func tapKinds(n *fakeNet, from *node) *kindTap {
	k := &kindTap{}
	addr := from.port.addr
	n.mu.Lock()
	n.tap = func(p fakePacket) {
		if p.from == addr && len(p.data) >= DataHeaderLen && p.data[0] == transport.TypeNoiseData {
			k.mu.Lock()
			k.kinds = append(k.kinds, Kind(p.data[1]))
			k.mu.Unlock()
		}
	}
	n.mu.Unlock()
	return k
}

func (k *kindTap) get() []Kind {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Kind(nil), k.kinds...)
}

func responderConfirmed(s *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.confirmed
}

// The dialler of a new IK session confirms its keys to the responder with
// its first data packet, and sends the PathChallenge that proves the
// responder has them only confirmDelay later, so that the responder reads
// the data first and answers no challenge meanwhile; the challenge is
// answered, and later packets carry none.
func TestNewSessionDataGoesBeforeKeyConfirmation(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	k := tapKinds(n, a)
	sa, sb := pair(t, a, b, true)
	n.settle()
	if got := k.get(); len(got) != 0 {
		t.Fatalf("the dialler sent %v before any data", got)
	}
	inB := newInbox(sb)
	if err := sa.Send([]byte("first")); err != nil {
		t.Fatal(err)
	}
	inB.waitN(t, 1)
	n.settle()
	if got := k.get(); len(got) != 1 || got[0] != KindData {
		t.Fatalf("the dialler sent %v, want the data packet alone", got)
	}
	if !responderConfirmed(sb.(*session)) {
		t.Fatal("the first data packet did not confirm the responder's keys")
	}
	clk.Advance(confirmDelay)
	s := sa.(*session)
	eventually(t, "the challenge to be answered", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.chal == nil
	})
	n.settle()
	if got := k.get(); len(got) != 2 || got[1] != KindPathChallenge {
		t.Fatalf("the dialler sent %v, want data then one PathChallenge", got)
	}
	if err := sa.Send([]byte("second")); err != nil {
		t.Fatal(err)
	}
	inB.waitN(t, 2)
	clk.Advance(5 * time.Second)
	n.settle()
	if got := k.get(); len(got) != 3 || got[2] != KindData {
		t.Fatalf("the dialler sent %v, want one more data packet only", got)
	}
}

// A new session nothing is sent on is confirmed by the PathChallenge the
// timer sends after confirmDelay.
func TestIdleNewSessionConfirmedAfterDelay(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	k := tapKinds(n, a)
	_, sb := pair(t, a, b, true)
	n.settle()
	if responderConfirmed(sb.(*session)) {
		t.Fatal("the responder's keys were confirmed with nothing sent")
	}
	clk.Advance(confirmDelay)
	eventually(t, "the responder's keys to be confirmed", func() bool {
		return responderConfirmed(sb.(*session))
	})
	n.settle()
	if got := k.get(); len(got) != 1 || got[0] != KindPathChallenge {
		t.Fatalf("the dialler sent %v, want one PathChallenge", got)
	}
	if r := a.tr.Stats().Retransmissions; r != 0 {
		t.Fatalf("the challenge's first send counted as %d retransmissions", r)
	}
	clk.Advance(5 * time.Second)
	n.settle()
	if got := k.get(); len(got) != 1 {
		t.Fatalf("the answered challenge was sent again: %v", got)
	}
}
