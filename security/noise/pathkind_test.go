package noise

import (
	"testing"

	"github.com/ipv8/go-ipv8/mux"
	"github.com/ipv8/go-ipv8/transport"
)

// A session tells the mux whether its packets go through a relay, so that
// Conn.Stats().Path reports it.
func TestSessionPathKindFollowsItsPath(t *testing.T) {
	n := newFakeNet(t)
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{})
	sa, _ := pair(t, a, b, true)
	n.settle()
	pk, ok := sa.(mux.PathKinder)
	if !ok {
		t.Fatal("a noise session does not implement mux.PathKinder")
	}
	if got := pk.PathKind(); got != transport.PathDirect {
		t.Fatalf("PathKind on the direct path = %v", got)
	}
	ab, _ := viaPair(a, b)
	if err := sa.(PathSetter).SetPath(ab); err != nil {
		t.Fatal(err)
	}
	if got := pk.PathKind(); got != transport.PathRelayed {
		t.Fatalf("PathKind over a relay = %v", got)
	}
	if err := sa.(PathSetter).SetPath(a.tr.DirectPath(b.port.LocalAddr())); err != nil {
		t.Fatal(err)
	}
	if got := pk.PathKind(); got != transport.PathDirect {
		t.Fatalf("PathKind back on the direct path = %v", got)
	}
}
