// Command custom-stack composes a host from chosen options only: a fixed
// identity, a chosen port, the transports picked by name, a bootstrap peer
// and a structured logger. Everything not chosen comes from the defaults
// table in the root package.
package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	ipv8 "github.com/ipv8/go-ipv8"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocols/ping"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// A bootstrap node with a throwaway identity.
	boot, err := ipv8.New(ipv8.ListenAddrs("/ip4/127.0.0.1/udp/0"), ipv8.Logger(logger))
	if err != nil {
		log.Fatal(err)
	}
	defer boot.Close()
	ping.Register(boot)

	// Our node: identity kept in a data directory, one port, QUIC only,
	// the bootstrap node dialled at start.
	dir, err := os.MkdirTemp("", "custom-stack")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	key, err := peer.LoadOrCreateKey(dir)
	if err != nil {
		log.Fatal(err)
	}
	h, err := ipv8.New(
		ipv8.Identity(key),
		ipv8.ListenAddrs("/ip4/127.0.0.1/udp/0"),
		ipv8.Transports(ipv8.QUIC),
		ipv8.BootstrapPeers(boot.AddrInfo()),
		ipv8.Logger(logger),
		ipv8.DialTimeout(10*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	fmt.Printf("node %s listening on %v\n", h.ID(), h.Addrs())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for r := range ping.Ping(ctx, h, boot.ID(), 200*time.Millisecond) {
		if r.Error != nil {
			log.Fatal(r.Error)
		}
		fmt.Printf("bootstrap peer %s: rtt %s\n", boot.ID().ShortString(), r.RTT)
		break
	}
}
