package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ipv8/go-ipv8/discovery"
	"github.com/ipv8/go-ipv8/discovery/community"
	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport/udp"
)

func init() {
	register(command{name: "walk", summary: "walk an IPv8 community and print each peer verified as a JSON line", run: runWalk})
}

func runWalk(ctx context.Context, args []string) error {
	fs := newFlagSet("walk", "--community HEX --bootstrap HOST:PORT[,HOST:PORT…] [--listen ADDR] [--duration D] [--peers N]")
	cidHex := fs.String("community", "", "community ID: 40 hex digits (required)")
	boot := fs.String("bootstrap", "", "bootstrap (tracker) addresses, comma-separated HOST:PORT (required)")
	listen := fs.String("listen", "0.0.0.0:0", "local UDP address of the walker's own port")
	data := fs.String("data", "", "data directory holding the identity (empty: a throwaway identity)")
	duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	stopAt := fs.Int("peers", 0, "stop after verifying this many peers (0: never)")
	target := fs.Int("target", community.DefaultTargetPeers, "keep walking until this many peers are verified at once")
	edge := fs.Bool("edge-walk", false, "use EdgeWalk instead of RandomWalk")
	plain := fs.Bool("plain", false, "do not advertise go-ipv8 Noise sessions (behave as a py-ipv8 peer)")
	lan := fs.String("lan-discovery", "", "also send introduction requests to these broadcast/multicast addresses every 30 s, comma-separated IP:PORT")
	verbose := fs.Bool("v", false, "log debug messages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cidHex == "" || *boot == "" {
		fs.Usage()
		return errUsage
	}
	cid, err := wire.ParseCommunityID(*cidHex)
	if err != nil {
		return err
	}
	bootstrap, err := walkResolve(ctx, *boot)
	if err != nil {
		return err
	}
	laddr, err := netip.ParseAddrPort(*listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %v", *listen, err)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	key, err := walkKey(*data)
	if err != nil {
		return err
	}
	port, err := udp.Listen(udp.Config{Addr: laddr, Logger: log})
	if err != nil {
		return err
	}
	defer port.Close()

	cfg := community.Config{ID: cid, Key: key, Bootstrap: bootstrap, TargetPeers: *target, Logger: log}
	if *target > community.DefaultMaxPeers {
		cfg.MaxPeers = *target + 10
	}
	if *edge {
		cfg.Strategy = community.EdgeWalk{}
	}
	if *lan != "" {
		for _, a := range strings.Split(*lan, ",") {
			ap, err := netip.ParseAddrPort(strings.TrimSpace(a))
			if err != nil {
				return fmt.Errorf("--lan-discovery %q: %v", a, err)
			}
			cfg.LANDiscovery = append(cfg.LANDiscovery, ap)
		}
	}
	if !*plain {
		cfg.Advertise = &wire.Advert{Flags: wire.CapNoise}
	}
	ep := community.NewEndpoint(port, nil)
	defer ep.Close()
	c, err := community.New(ep, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(os.Stderr, "walking community %s from %s as %s (mid %s)\n", cid, port.LocalAddr(), key.ID(), c.Mid())

	found := make(chan discovery.PeerInfo, 256)
	cancel := c.Subscribe(func(e discovery.Event) {
		if e.Kind == discovery.PeerAdded {
			select {
			case found <- e.Peer:
			default: // the printer fell behind: the peer is still in the table
			}
		}
	})
	defer cancel()
	c.Start()

	var deadline <-chan time.Time
	if *duration > 0 {
		deadline = time.After(*duration)
	}
	enc := json.NewEncoder(os.Stdout)
	seen := map[discovery.Mid]bool{}
	for {
		select {
		case p := <-found:
			if seen[p.Mid] {
				continue // dropped and verified again
			}
			seen[p.Mid] = true
			if err := enc.Encode(community.NewPeerLine(p)); err != nil {
				return err
			}
			if *stopAt > 0 && len(seen) >= *stopAt {
				return nil
			}
		case <-deadline:
			return walkSummary(c, len(seen))
		case <-ctx.Done():
			return walkSummary(c, len(seen))
		}
	}
}

func walkSummary(c *community.Community, n int) error {
	s := c.Stats()
	fmt.Fprintf(os.Stderr, "verified %d peers; WAN address %s; %d requests sent, %d responses, %d walk timeouts\n",
		n, c.WANAddr(), s.RequestsSent, s.ResponsesIn, s.WalkTimeouts)
	switch {
	case n == 0 && s.ResponsesIn > 0:
		// As in py-ipv8, bootstrap addresses are trackers, not peers.
		return errors.New("no peer verified: the bootstrap answered but introduced no other peer (bootstrap nodes themselves are not counted)")
	case n == 0:
		return errors.New("no peer verified: no answer (is the bootstrap address right, and the community ID?)")
	}
	return nil
}

// walkResolve resolves comma-separated HOST:PORT addresses to IPv4 (what
// py-ipv8's trackers speak) or, failing that, IPv6 addresses.
func walkResolve(ctx context.Context, list string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		host, portStr, err := net.SplitHostPort(s)
		if err != nil {
			return nil, fmt.Errorf("bootstrap %q: %v", s, err)
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("bootstrap %q: bad port", s)
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
			continue
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
		if err != nil || len(ips) == 0 {
			if ips, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil || len(ips) == 0 {
				return nil, fmt.Errorf("bootstrap %q: cannot resolve %s: %v", s, host, err)
			}
		}
		out = append(out, netip.AddrPortFrom(ips[0].Unmap(), uint16(port)))
	}
	return out, nil
}

func walkKey(dir string) (*peer.PrivateKey, error) {
	if dir == "" {
		return peer.GenerateKey(nil)
	}
	return peer.LoadOrCreateKey(dir)
}
