package ipv8

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipv8/go-ipv8/nat/punch"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
)

// defaults is the one table of defaults: each applies only when the caller
// set nothing for its part of the Config.
var defaults = []struct {
	what  string
	unset func(*Config) bool
	apply func(*Config) error
}{
	{"identity: the key in DataDir (created on first run), or a fresh key when there is no DataDir",
		func(c *Config) bool { return c.Key == nil },
		func(c *Config) error {
			var err error
			if c.DataDir != "" {
				c.Key, err = peer.LoadOrCreateKey(c.DataDir)
			} else {
				c.Key, err = peer.GenerateKey(nil)
			}
			return err
		}},
	{"listen: one dual-stack UDP port picked by the system",
		func(c *Config) bool { return len(c.ListenAddrs) == 0 },
		func(c *Config) error {
			c.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/0.0.0.0/udp/0"), ma.StringCast("/ip6/::/udp/0")}
			return nil
		}},
	{"transports: the raw-UDP transport (preferred when a peer offers it) and QUIC",
		func(c *Config) bool { return len(c.Transports) == 0 },
		func(c *Config) error { c.Transports = []string{UDP, QUIC}; return nil }},
	{"logger: slog's default",
		func(c *Config) bool { return c.Logger == nil },
		func(c *Config) error { c.Logger = slog.Default(); return nil }},
	{"agent: go-ipv8/<version>",
		func(c *Config) bool { return c.AgentVersion == "" },
		func(c *Config) error { c.AgentVersion = "go-ipv8/" + Version; return nil }},
	{"peerstore: 10 000 peers",
		func(c *Config) bool { return c.PeerstoreSize == 0 },
		func(c *Config) error { c.PeerstoreSize = 10_000; return nil }},
	{"dial timeout: 30 s",
		func(c *Config) bool { return c.DialTimeout == 0 },
		func(c *Config) error { c.DialTimeout = 30 * time.Second; return nil }},
	{"dial stagger: 250 ms between a peer's addresses",
		func(c *Config) bool { return c.DialStagger == 0 },
		func(c *Config) error { c.DialStagger = 250 * time.Millisecond; return nil }},
	{"birthday punch sockets: kernel UDP sockets; none beside WithPacketConn (the punch then fails to the relay)",
		func(c *Config) bool { return c.PunchSockets == nil },
		func(c *Config) error {
			if c.PacketConn != nil {
				c.PunchSockets = func(int) ([]transport.PacketConn, error) {
					return nil, errors.New("ipv8: no extra sockets beside WithPacketConn (see PunchSockets)")
				}
			} else {
				c.PunchSockets = punch.ListenUDP4
			}
			return nil
		}},
	// NAT traversal's other defaults are the zero values: no relays, no
	// relay service (nat/relay's Limits when it is on), hole punching on,
	// STUN for punching from the relays in use, and keepalives at
	// nat.DefaultKeepalive (15 s) while the mapping lifetime is unknown.
}

func applyDefaults(c *Config) error {
	for _, d := range defaults {
		if d.unset(c) {
			if err := d.apply(c); err != nil {
				return fmt.Errorf("ipv8: default %s: %w", d.what, err)
			}
		}
	}
	return nil
}
