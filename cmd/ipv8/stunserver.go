package main

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/ipv8/go-ipv8/nat/stun"
)

func init() {
	register(command{name: "stun-server", summary: "run an RFC 5780 STUN server (two addresses: CHANGE-REQUEST, OTHER-ADDRESS, RESPONSE-ORIGIN)", run: runSTUNServer})
}

func runSTUNServer(ctx context.Context, args []string) error {
	fs := newFlagSet("stun-server", "--listen IP:PORT [--alt IP2:PORT2]")
	listen := fs.String("listen", "", "primary address IP:PORT (required; a specific IP, not 0.0.0.0)")
	alt := fs.String("alt", "", "alternate address IP2:PORT2: another IP of this host and another port (enables RFC 5780 behaviour discovery)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *listen == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	cfg := stun.ServerConfig{}
	var err error
	if cfg.Primary, err = netip.ParseAddrPort(*listen); err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	if *alt != "" {
		if cfg.Alternate, err = netip.ParseAddrPort(*alt); err != nil {
			return fmt.Errorf("--alt: %w", err)
		}
	}
	s, err := stun.Listen(cfg)
	if err != nil {
		return err
	}
	for _, a := range s.Addrs() {
		fmt.Printf("stun-server: listening on %s\n", a)
	}
	if !cfg.Alternate.IsValid() {
		fmt.Println("stun-server: no --alt: CHANGE-REQUEST is answered with 420 (clients cannot test filtering)")
	}
	s.Serve(ctx)
	return nil
}
