package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	ipv8 "github.com/ipv8/go-ipv8"
	"github.com/ipv8/go-ipv8/discovery/community"
	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/host"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocols/perf"
	"github.com/ipv8/go-ipv8/protocols/ping"
	"github.com/ipv8/go-ipv8/transport"
)

func init() {
	register(command{name: "node", summary: "run a host: print its ID and addresses, serve ping, identify and perf", run: runNode})
}

// hostFlags are the flags every command that runs a host shares.
type hostFlags struct {
	listen    string
	data      string
	transport string
	verbose   bool
}

func (f *hostFlags) add(fs interface {
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
}, defaultListen string, persistent bool) {
	fs.StringVar(&f.listen, "listen", defaultListen, "UDP address of the host's one port, as a multiaddr (/ip4/0.0.0.0/udp/4242)")
	def := ""
	if persistent {
		def = defaultDataDir()
	}
	fs.StringVar(&f.data, "data", def, "data directory holding the identity (empty: a throwaway identity)")
	fs.StringVar(&f.transport, "transport", "", "transports to use, comma-separated: quic, udp (default: all available)")
	fs.BoolVar(&f.verbose, "v", false, "log debug messages")
}

func (f *hostFlags) options() []ipv8.Option {
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelDebug
	}
	opts := []ipv8.Option{ipv8.Logger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))}
	if f.listen != "" {
		opts = append(opts, ipv8.ListenAddrs(strings.Split(f.listen, ",")...))
	}
	if f.data != "" {
		opts = append(opts, ipv8.DataDir(f.data))
	}
	if f.transport != "" {
		opts = append(opts, ipv8.Transports(strings.Split(f.transport, ",")...))
	}
	return opts
}

// dialFromCLI starts a throwaway host with the flags and connects it to
// the peer named by addr (a multiaddr ending in /p2p/ID). The caller closes
// the host.
func dialFromCLI(ctx context.Context, hf *hostFlags, addr string) (*host.Host, transport.Conn, time.Duration, error) {
	ai, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return nil, nil, 0, err
	}
	h, err := ipv8.New(hf.options()...)
	if err != nil {
		return nil, nil, 0, err
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := h.Connect(cctx, *ai); err != nil {
		h.Close()
		return nil, nil, 0, err
	}
	return h, h.Conn(ai.ID), time.Since(start), nil
}

func runNode(ctx context.Context, args []string) error {
	fs := newFlagSet("node", "[--listen MULTIADDR] [--data DIR] [--transport quic,udp] [--community HEX [--bootstrap HOST:PORT,...]]")
	var hf hostFlags
	hf.add(fs, "/ip4/0.0.0.0/udp/4242", true)
	communityHex := fs.String("community", "", "also join this IPv8 community (40 hex digits): answer introductions, walk, print verified peers and received messages as JSON lines")
	bootstrapList := fs.String("bootstrap", "", "community bootstrap addresses, comma-separated HOST:PORT")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var nodeOpts *community.NodeOptions
	if *communityHex != "" {
		cid, err := wire.ParseCommunityID(*communityHex)
		if err != nil {
			return fmt.Errorf("--community: %w", err)
		}
		nodeOpts = &community.NodeOptions{Community: cid, Out: os.Stdout}
		for _, s := range strings.Split(*bootstrapList, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			ap, err := netip.ParseAddrPort(s)
			if err != nil {
				return fmt.Errorf("--bootstrap %q: %w", s, err)
			}
			nodeOpts.Bootstrap = append(nodeOpts.Bootstrap, ap)
		}
	} else if *bootstrapList != "" {
		return errors.New("--bootstrap needs --community")
	}
	h, err := ipv8.New(hf.options()...)
	if err != nil {
		return err
	}
	defer h.Close()
	ping.Register(h)
	perf.Register(h)

	fmt.Printf("peer ID: %s\n", h.ID())
	fmt.Println("listening on:")
	for _, a := range h.AddrInfo().P2pAddrs() {
		fmt.Printf("  %s\n", a)
	}
	fmt.Println("serving:", strings.Trim(fmt.Sprint(h.Protocols()), "[]"))
	communityDone := make(chan error, 1)
	if nodeOpts != nil {
		fmt.Printf("community: %s (JSON lines follow)\n", nodeOpts.Community)
		nodeOpts.Logger = h.Logger()
		go func() { communityDone <- community.RunNode(ctx, h.Port(), h.Key(), *nodeOpts) }()
	}

	sub := h.Subscribe(256)
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			fmt.Println("shutting down")
			return nil
		case err := <-communityDone:
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("community: %w", err)
			}
		case ev := <-sub.C:
			switch e := ev.(type) {
			case host.EvtPeerConnected:
				dir := "outbound"
				if e.Inbound {
					dir = "inbound"
				}
				fmt.Printf("connected:    %s %s via %s (%s)\n", e.Peer, dir, e.Conn.RemoteMultiaddr(), e.Conn.Transport())
			case host.EvtPeerDisconnected:
				fmt.Printf("disconnected: %s\n", e.Peer)
			case host.EvtPeerIdentified:
				fmt.Printf("identified:   %s agent=%q sees us at %s\n", e.Peer, e.AgentVersion, e.ObservedAddr)
			case host.EvtLocalAddrsChanged:
				fmt.Printf("addresses:    %v\n", e.Addrs)
			case host.EvtPeerAddrChanged:
				fmt.Printf("peer moved:   %s %s -> %s\n", e.Peer, e.Old, e.New)
			}
		}
	}
}
