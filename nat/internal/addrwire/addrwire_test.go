package addrwire

import (
	"errors"
	"net/netip"
	"testing"
)

func TestAddressRoundTrips(t *testing.T) {
	for _, s := range []string{"1.2.3.4:5", "[2001:db8::1]:65535", "[::ffff:10.0.0.1]:80"} {
		a := netip.MustParseAddrPort(s)
		b := Append([]byte{0xaa}, a)
		got, n, err := Parse(b[1:])
		if err != nil || n != len(b)-1 {
			t.Fatalf("%s: parse %v, %d of %d bytes", s, err, n, len(b)-1)
		}
		want := netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		if got != want {
			t.Fatalf("%s: got %s, want %s", s, got, want)
		}
	}
}

func TestBadAddressesAreErrors(t *testing.T) {
	full := Append(nil, netip.MustParseAddrPort("[2001:db8::1]:1"))
	for i := range len(full) {
		if _, _, err := Parse(full[:i]); !errors.Is(err, ErrTruncated) {
			t.Fatalf("%d bytes: %v, want ErrTruncated", i, err)
		}
	}
	if _, _, err := Parse([]byte{5, 0, 1, 1, 2, 3, 4}); err == nil {
		t.Fatal("family 5 accepted")
	}
}
