package nat

import (
	"encoding/json"
	"testing"
	"time"
)

func TestBehaviorJSONNamesRoundTrip(t *testing.T) {
	for _, b := range []Behavior{Unknown, EndpointIndependent, AddressDependent, AddressAndPortDependent} {
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		var got Behavior
		if err := json.Unmarshal(j, &got); err != nil || got != b {
			t.Errorf("%s -> %s -> %s (%v)", b, j, got, err)
		}
	}
	want := map[Behavior]string{EndpointIndependent: `"endpoint-independent"`, AddressDependent: `"address-dependent"`,
		AddressAndPortDependent: `"address-and-port-dependent"`, Unknown: `"unknown"`}
	for b, w := range want {
		if j, _ := json.Marshal(b); string(j) != w {
			t.Errorf("%d marshals to %s, want %s", b, j, w)
		}
	}
	var b Behavior
	if err := json.Unmarshal([]byte(`"cone"`), &b); err == nil {
		t.Error("unknown name accepted")
	}
}

func TestClassicNames(t *testing.T) {
	EI, AD, APD := EndpointIndependent, AddressDependent, AddressAndPortDependent
	cases := []struct {
		noNAT bool
		m, f  Behavior
		want  string
	}{
		{true, EI, EI, "open internet"},
		{true, EI, APD, "symmetric UDP firewall"},
		{false, EI, EI, "full cone"},
		{false, EI, AD, "restricted cone"},
		{false, EI, APD, "port-restricted cone"},
		{false, AD, APD, "symmetric"},
		{false, APD, EI, "symmetric"},
		{false, EI, Unknown, "unknown"},
		{false, Unknown, EI, "unknown"},
	}
	for _, c := range cases {
		if got := Classic(c.noNAT, c.m, c.f); got != c.want {
			t.Errorf("Classic(%v, %s, %s) = %q, want %q", c.noNAT, c.m, c.f, got, c.want)
		}
	}
}

func TestKeepaliveIntervalIsHalfTheLifetimeWithinBounds(t *testing.T) {
	cases := map[time.Duration]time.Duration{
		0:                        DefaultKeepalive,
		30 * time.Second:         15 * time.Second,
		9 * time.Second:          4500 * time.Millisecond,
		time.Second:              MinKeepalive,
		600 * time.Second:        MaxKeepalive,
		29440 * time.Millisecond: 14720 * time.Millisecond,
	}
	for life, want := range cases {
		if got := KeepaliveInterval(life); got != want {
			t.Errorf("KeepaliveInterval(%s) = %s, want %s", life, got, want)
		}
	}
}
