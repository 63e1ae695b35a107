package noise

import (
	"bytes"
	"fmt"
	"testing"
)

func TestIKHandshakeAuthenticatesBothSides(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	sa, sb := pair(t, a, b, true)
	if sa.RemotePeer() != b.id() || sb.RemotePeer() != a.id() {
		t.Fatalf("remote peers: a sees %s, b sees %s", sa.RemotePeer(), sb.RemotePeer())
	}
	if !sa.RemotePublicKey().Equal(b.key.Public()) || !sb.RemotePublicKey().Equal(a.key.Public()) {
		t.Fatal("remote public keys differ from the identities")
	}
	if sa.LocalPeer() != a.id() || sb.LocalPeer() != b.id() {
		t.Fatal("local peers wrong")
	}
	if sa.RemoteAddr() != b.port.LocalAddr() || sb.RemoteAddr() != a.port.LocalAddr() {
		t.Fatalf("remote addrs %v %v", sa.RemoteAddr(), sb.RemoteAddr())
	}
	ia, ib := newInbox(sa), newInbox(sb)
	for i := 0; i < 10; i++ {
		if err := sa.Send([]byte(fmt.Sprintf("a%d", i))); err != nil {
			t.Fatal(err)
		}
		if err := sb.Send([]byte(fmt.Sprintf("b%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	got := ib.waitN(t, 10)
	for i, m := range got {
		if string(m) != fmt.Sprintf("a%d", i) {
			t.Fatalf("b got %q at %d", m, i)
		}
	}
	got = ia.waitN(t, 10)
	for i, m := range got {
		if string(m) != fmt.Sprintf("b%d", i) {
			t.Fatalf("a got %q at %d", m, i)
		}
	}
	if st := a.tr.Stats(); st.HandshakesCompleted != 1 || st.HandshakesInitiated != 1 {
		t.Fatalf("a stats %+v", st)
	}
}

func TestXXHandshakeAuthenticatesBothSides(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	r := <-dialAsync(t, a, b, false, []byte("hello via XX"))
	if r.err != nil {
		t.Fatal(r.err)
	}
	sb := accept(t, b)
	if r.s.RemotePeer() != b.id() || sb.RemotePeer() != a.id() {
		t.Fatal("XX did not learn the right identities")
	}
	if !r.s.RemotePublicKey().Equal(b.key.Public()) || !sb.RemotePublicKey().Equal(a.key.Public()) {
		t.Fatal("XX remote public keys wrong")
	}
	got := newInbox(sb).waitN(t, 1)
	if !bytes.Equal(got[0], []byte("hello via XX")) {
		t.Fatalf("early data %q", got[0])
	}
	ia := newInbox(r.s)
	if err := sb.Send([]byte("back")); err != nil {
		t.Fatal(err)
	}
	if m := ia.waitN(t, 1); string(m[0]) != "back" {
		t.Fatalf("got %q", m[0])
	}
}
