package community

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/internal/clock"
	"github.com/ipv8/go-ipv8/peer"
)

// Defaults, py-ipv8 3.2's unless said otherwise.
const (
	DefaultWalkInterval      = 500 * time.Millisecond
	DefaultWalkTimeout       = 3 * time.Second
	DefaultTargetPeers       = 20
	DefaultMaxPeers          = 30
	DefaultPingInterval      = 10 * time.Second
	DefaultInactiveAfter     = 27500 * time.Millisecond
	DefaultDropAfter         = 57500 * time.Millisecond
	DefaultBootstrapInterval = 30 * time.Second
	DefaultLANInterval       = 30 * time.Second
	// DefaultMaxWalkable bounds the introduced-but-not-verified addresses
	// a community keeps (py-ipv8 keeps them all; go-ipv8 evicts the oldest).
	DefaultMaxWalkable = 512
	// DefaultPunctureRate bounds the punctures sent per second in answer to
	// (unsigned, spoofable) puncture requests (go-ipv8 only).
	DefaultPunctureRate = 50
)

// Config describes one community.
type Config struct {
	ID  wire.CommunityID
	Key *peer.PrivateKey
	// Clock drives every timer; clock.Real when nil. internal/netsim's
	// virtual clock runs thousands of communities in one process.
	Clock clock.Clock
	// Seed makes the community's random choices reproducible (for
	// simulations); 0 draws a random seed.
	Seed uint64
	// Bootstrap addresses (trackers) are walked to when the community has
	// no peers, and now and then to reach the rest of the network. Like
	// py-ipv8, they are never counted as peers or introduced to others.
	Bootstrap []netip.AddrPort
	// LANDiscovery addresses (broadcast or multicast, e.g.
	// 255.255.255.255:8090) receive an introduction request every
	// LANInterval; peers on the LAN answer from their own addresses.
	LANDiscovery []netip.AddrPort
	LANInterval  time.Duration
	// LAN is this host's own local address; when zero, the port's address
	// (or, for an unspecified IP, the first private interface address).
	LAN netip.AddrPort
	// LANPrefixes are the networks whose addresses are reachable directly;
	// introductions to a LAN address outside them are not walked to. When
	// empty: the /24 (IPv4) or /64 (IPv6) around LAN.
	LANPrefixes []netip.Prefix

	// Strategy picks whom to ask for introductions; RandomWalk{} when nil.
	// AnswerOnly: walk nowhere (trackers, passive nodes).
	Strategy   Strategy
	AnswerOnly bool

	WalkInterval time.Duration // between walk steps (0.5 s)
	WalkTimeout  time.Duration // an unanswered walk's address is dropped (3 s)
	TargetPeers  int           // walking stops at this many verified peers (20)
	// MaxPeers: introduction requests are ignored above this many verified
	// peers (30); -1 for no limit (trackers).
	MaxPeers int
	// Churn pings inactive peers and drops silent ones; zero values take
	// py-ipv8's defaults. Churn.Disable turns it off.
	Churn Churn

	BootstrapInterval time.Duration // between full bootstraps while peerless (30 s)
	MaxWalkable       int           // bound of the walkable address table (512)
	PunctureRate      int           // punctures per second answered (50)

	// Advertise is go-ipv8's capability advertisement (wire.Advert) put in
	// the extra bytes of introduction requests and responses; nil sends
	// none (a plain py-ipv8 peer).
	Advertise *wire.Advert
	// Extra is the application's own extra bytes for introduction
	// messages (some py-ipv8 communities read them); the advertisement
	// follows it.
	Extra []byte

	// DisablePuncture makes the community ignore puncture requests (tests
	// use it to show what puncture is for).
	DisablePuncture bool

	Logger *slog.Logger
}

// Churn configures the pinging of inactive peers (py-ipv8's RandomChurn,
// with an introduction request as the ping, since every community answers
// one).
type Churn struct {
	Disable       bool
	SampleSize    int           // peers looked at per step (8)
	PingInterval  time.Duration // between pings of one inactive peer (10 s)
	InactiveAfter time.Duration // silence before pinging (27.5 s)
	DropAfter     time.Duration // silence before dropping a pinged peer (57.5 s)
}

func (c *Config) setDefaults() {
	if c.Clock == nil {
		c.Clock = clock.Real
	}
	if c.WalkInterval <= 0 {
		c.WalkInterval = DefaultWalkInterval
	}
	if c.WalkTimeout <= 0 {
		c.WalkTimeout = DefaultWalkTimeout
	}
	if c.TargetPeers == 0 {
		c.TargetPeers = DefaultTargetPeers
	}
	if c.MaxPeers == 0 {
		c.MaxPeers = DefaultMaxPeers
	}
	if c.BootstrapInterval <= 0 {
		c.BootstrapInterval = DefaultBootstrapInterval
	}
	if c.LANInterval <= 0 {
		c.LANInterval = DefaultLANInterval
	}
	if c.MaxWalkable <= 0 {
		c.MaxWalkable = DefaultMaxWalkable
	}
	if c.PunctureRate <= 0 {
		c.PunctureRate = DefaultPunctureRate
	}
	if c.Churn.SampleSize <= 0 {
		c.Churn.SampleSize = 8
	}
	if c.Churn.PingInterval <= 0 {
		c.Churn.PingInterval = DefaultPingInterval
	}
	if c.Churn.InactiveAfter <= 0 {
		c.Churn.InactiveAfter = DefaultInactiveAfter
	}
	if c.Churn.DropAfter <= 0 {
		c.Churn.DropAfter = DefaultDropAfter
	}
	if c.Strategy == nil {
		c.Strategy = &RandomWalk{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}
