package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ipv8/go-ipv8/peer"
)

func init() {
	register(command{name: "id", summary: "create or show this node's identity (peer ID, mid, key forms)", run: runID})
}

// defaultDataDir is where the CLI keeps its identity unless --data says otherwise.
func defaultDataDir() string {
	if d := os.Getenv("IPV8_DATA"); d != "" {
		return d
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "ipv8")
	}
	return ".ipv8"
}

func runID(ctx context.Context, args []string) error {
	fs := newFlagSet("id", "[--data DIR]")
	data := fs.String("data", defaultDataDir(), "data directory holding identity.key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	k, err := peer.LoadOrCreateKey(*data)
	if err != nil {
		return err
	}
	pub := k.Public()
	mid := pub.Mid()
	fmt.Printf("peer ID:    %s\n", k.ID())
	fmt.Printf("mid:        %x\n", mid)
	fmt.Printf("LibNaCLPK:  %s\n", hex.EncodeToString(pub.MarshalLibNaCLPK()))
	fmt.Printf("ed25519:    %x\n", pub.Ed25519())
	fmt.Printf("x25519:     %x\n", pub.X25519())
	fmt.Printf("key file:   %s\n", filepath.Join(*data, peer.KeyFileName))
	return nil
}
