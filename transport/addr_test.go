package transport

import (
	"errors"
	"net/netip"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func TestAddrPortRoundTrip(t *testing.T) {
	for _, c := range []struct {
		ap     string
		suffix string
		want   string
	}{
		{"127.0.0.1:4242", "/quic-v1", "/ip4/127.0.0.1/udp/4242/quic-v1"},
		{"[::1]:9", "", "/ip6/::1/udp/9"},
		{"[::ffff:10.0.0.1]:7", "/quic-v1", "/ip4/10.0.0.1/udp/7/quic-v1"},
	} {
		m, err := FromAddrPort(netip.MustParseAddrPort(c.ap), c.suffix)
		if err != nil || m.String() != c.want {
			t.Fatalf("FromAddrPort(%s) = %v, %v", c.ap, m, err)
		}
		ap, rest, err := ToAddrPort(m)
		if err != nil {
			t.Fatal(err)
		}
		if ap != netip.MustParseAddrPort(c.ap) && ap.Addr() != netip.MustParseAddrPort(c.ap).Addr().Unmap() {
			t.Fatalf("ToAddrPort = %v", ap)
		}
		if rest.String() != c.suffix {
			t.Fatalf("rest = %q want %q", rest, c.suffix)
		}
	}
}

func TestToAddrPortRejectsOtherAddrs(t *testing.T) {
	for _, s := range []string{"/ip4/1.2.3.4/tcp/1", "/dns4/example.com/udp/1", "/ip4/1.2.3.4"} {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := ToAddrPort(m); !errors.Is(err, ErrAddrNotSupported) {
			t.Errorf("%s: %v", s, err)
		}
	}
}
