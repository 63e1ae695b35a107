package ipv8

import (
	"net/netip"
	"slices"
	"testing"
)

// Peers choose the relays of the circuits we open; a punch asks only the
// latest few of them for STUN, so that their number stays bounded.
func TestNoteRelayKeepsTheLatestFew(t *testing.T) {
	tr := &traversal{}
	var want []netip.AddrPort
	for i := range 10 {
		a := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 4000)
		tr.noteRelay(a)
		want = append(want, a)
	}
	tr.noteRelay(want[7]) // seen again: the newest now
	want = []netip.AddrPort{want[6], want[8], want[9], want[7]}
	if !slices.Equal(tr.used, want) {
		t.Fatalf("used %v, want %v", tr.used, want)
	}
}
