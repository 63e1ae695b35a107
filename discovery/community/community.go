package community

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/ipv8/go-ipv8/discovery"
	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/internal/clock"
	"github.com/ipv8/go-ipv8/peer"
)

// Errors a caller may branch on.
var (
	// ErrReservedID: message IDs 231–255 belong to the discovery protocol.
	ErrReservedID = errors.New("community: message IDs 231-255 are reserved for the discovery protocol")
	// ErrHandlerExists: a handler is already registered for the ID.
	ErrHandlerExists = errors.New("community: a handler is already registered for this message ID")
	// ErrClosed: the community was closed.
	ErrClosed = errors.New("community: closed")
)

// Community is one IPv8 overlay running on an Endpoint: it answers and
// sends introduction requests, punctures NATs for its peers, keeps its peer
// tables and neighbourhood graph, and delivers application messages to the
// handlers registered by message ID.
//
// Its state is a struct driven by two kinds of events: a packet arrived
// (on the endpoint's worker, see Endpoint) and the walk timer fired (on
// the clock's goroutine); a mutex orders them. Packets are built under the lock and
// sent after it is released. A Community has no goroutine of its own.
type Community struct {
	id     wire.CommunityID
	ep     *Endpoint
	cfg    Config
	clk    clock.Clock
	signer *wire.Signer
	mid    discovery.Mid
	log    *slog.Logger

	hmu      sync.RWMutex
	handlers *[wire.FirstReserved]handlerEntry // allocated by the first Handle

	mu         sync.Mutex
	closed     bool
	started    bool
	rng        *rand.Rand
	globalTime uint64
	net        *network
	walker     walker
	lan        netip.AddrPort
	lanNets    []netip.Prefix
	wan        wanVote
	pending    map[pendingKey]time.Time // our introduction requests in flight
	timer      clock.Timer
	lastBoot   time.Time
	lastLAN    time.Time
	punctures  tokenBucket
	extra      []byte
	subs       map[int]func(discovery.Event)
	nextSub    int

	stats counters
}

type pendingKey struct {
	addr netip.AddrPort
	id   uint16
}

// New creates a community on ep; Start begins walking.
func New(ep *Endpoint, cfg Config) (*Community, error) {
	if cfg.Key == nil {
		return nil, errors.New("community: Config.Key is required")
	}
	cfg.setDefaults()
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		_, _ = crand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	c := &Community{
		id:      cfg.ID,
		ep:      ep,
		cfg:     cfg,
		clk:     cfg.Clock,
		signer:  wire.NewSigner(cfg.Key),
		mid:     discovery.Mid(cfg.Key.Public().Mid()),
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		net:     newNetwork(cfg.MaxWalkable),
		walker:  cfg.Strategy.newWalker(),
		pending: make(map[pendingKey]time.Time),
		subs:    make(map[int]func(discovery.Event)),
	}
	c.log = cfg.Logger.With("community", cfg.ID.String()[:8])
	c.punctures = tokenBucket{rate: float64(cfg.PunctureRate), burst: 2 * float64(cfg.PunctureRate)}
	for _, a := range cfg.Bootstrap {
		c.net.blacklist[unmap(a)] = true
	}
	c.lan = cfg.LAN
	if !c.lan.IsValid() {
		c.lan = guessLAN(ep.Port().LocalAddr())
	}
	c.lanNets = cfg.LANPrefixes
	if len(c.lanNets) == 0 && c.lan.IsValid() {
		bits := 24
		if c.lan.Addr().Is6() {
			bits = 64
		}
		if p, err := c.lan.Addr().Prefix(bits); err == nil {
			c.lanNets = []netip.Prefix{p}
		}
	}
	c.extra = append([]byte(nil), cfg.Extra...)
	if cfg.Advertise != nil {
		c.extra = wire.AppendAdvert(c.extra, *cfg.Advertise)
	}
	if err := ep.add(c); err != nil {
		return nil, err
	}
	return c, nil
}

// ID returns the community ID.
func (c *Community) ID() wire.CommunityID { return c.id }

// Mid returns this host's member ID.
func (c *Community) Mid() discovery.Mid { return c.mid }

// Signer returns the identity the community signs with.
func (c *Community) Signer() *wire.Signer { return c.signer }

// Start begins walking (or, with AnswerOnly, only answering). The first
// step comes after a random fraction of the walk interval, so that hosts
// started together do not step in lockstep.
func (c *Community) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.closed {
		return
	}
	c.started = true
	first := time.Duration(c.rng.Int64N(int64(c.cfg.WalkInterval)))
	c.timer = c.clk.AfterFunc(first, c.tick)
}

// Close stops the community and removes it from the endpoint.
func (c *Community) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	c.ep.remove(c)
	return nil
}

// LANAddr returns the local address the community reports.
func (c *Community) LANAddr() netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lan
}

// WANAddr returns the public address peers report seeing (the majority of
// their reports); the LAN address until one arrived.
func (c *Community) WANAddr() netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.myWAN()
}

func (c *Community) myWAN() netip.AddrPort {
	if w := c.wan.current(); w.IsValid() {
		return w
	}
	return c.lan
}

// claimTime advances the Lamport clock for a message we send.
func (c *Community) claimTime() uint64 {
	if c.globalTime < ^uint64(0) {
		c.globalTime++
	}
	return c.globalTime
}

// maxTimeJump bounds how far one received message can move our global time,
// so that a peer cannot push it to the end of its range.
const maxTimeJump = 1 << 32

func (c *Community) observeTime(t uint64) {
	if t > c.globalTime && t-c.globalTime <= maxTimeJump {
		c.globalTime = t
	}
}

// GlobalTime returns the community's Lamport clock.
func (c *Community) GlobalTime() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.globalTime
}

// Peers returns the verified peers.
func (c *Community) Peers() []discovery.PeerInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]discovery.PeerInfo, 0, len(c.net.list))
	for _, p := range c.net.list {
		out = append(out, p.info())
	}
	return out
}

// PeerCount returns the number of verified peers.
func (c *Community) PeerCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.net.count()
}

// Lookup returns the verified peer with the given ID.
func (c *Community) Lookup(id peer.ID) (discovery.PeerInfo, bool) {
	ed, err := id.Ed25519()
	if err != nil {
		return discovery.PeerInfo{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.net.list {
		if string(p.key.Ed25519()) == string(ed) {
			return p.info(), true
		}
	}
	return discovery.PeerInfo{}, false
}

// Subscribe calls f for every later change of the verified peers, on the
// goroutine that made it (the endpoint's worker or the clock's): f must
// not block.
func (c *Community) Subscribe(f func(discovery.Event)) (cancel func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.nextSub
	c.nextSub++
	c.subs[id] = f
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.subs, id)
	}
}

// Walkable returns the number of introduced addresses not verified yet.
func (c *Community) Walkable() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.net.walkList)
}

var _ discovery.Discoverer = (*Community)(nil)
var _ discovery.GraphSource = (*Community)(nil)

// guessLAN returns the port's address, or for an unspecified IP the first
// private IPv4 address of an interface that is up.
func guessLAN(local netip.AddrPort) netip.AddrPort {
	local = unmap(local)
	if !local.IsValid() || !local.Addr().IsUnspecified() {
		return local
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return local
	}
	var fallback netip.Addr
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok || !ip.Unmap().Is4() {
				continue
			}
			ip = ip.Unmap()
			if ip.IsPrivate() {
				return netip.AddrPortFrom(ip, local.Port())
			}
			if !fallback.IsValid() && ip.IsGlobalUnicast() {
				fallback = ip
			}
		}
	}
	if fallback.IsValid() {
		return netip.AddrPortFrom(fallback, local.Port())
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), local.Port())
}

func unmap(a netip.AddrPort) netip.AddrPort {
	if !a.IsValid() {
		return a
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// isPrivate reports addresses that do not name a host on the Internet: a
// WAN report of one is ignored.
func isPrivate(a netip.Addr) bool {
	return !a.IsValid() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsUnspecified() ||
		a.IsMulticast() || a.IsInterfaceLocalMulticast()
}

func (c *Community) inLAN(a netip.Addr) bool {
	for _, p := range c.lanNets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (c *Community) String() string { return fmt.Sprintf("community %s (mid %s)", c.id, c.mid) }
