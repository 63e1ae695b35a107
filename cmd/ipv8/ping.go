package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocols/ping"
)

func init() {
	register(command{name: "ping", summary: "connect to MULTIADDR/p2p/ID and print round-trip times like ping(8)", run: runPing})
}

func runPing(ctx context.Context, args []string) error {
	fs := newFlagSet("ping", "[-c COUNT] [-i INTERVAL] MULTIADDR/p2p/ID")
	count := fs.Int("c", 0, "stop after COUNT pings (0: until interrupted)")
	interval := fs.Duration("i", time.Second, "time between pings")
	var hf hostFlags
	hf.add(fs, "/ip4/0.0.0.0/udp/0", false)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	h, c, took, err := dialFromCLI(ctx, &hf, fs.Arg(0))
	if err != nil {
		return err
	}
	defer h.Close()
	id := c.RemotePeer()
	fmt.Printf("PING %s via %s (%s): connected in %s\n", id, c.RemoteMultiaddr(), c.Transport(), roundDur(took))

	pctx, stop := context.WithCancel(ctx)
	defer stop()
	var rtts []time.Duration
	seq := 0
	for r := range ping.Ping(pctx, h, id, *interval) {
		if r.Error != nil {
			if errors.Is(r.Error, context.Canceled) {
				break
			}
			return r.Error
		}
		seq++
		rtts = append(rtts, r.RTT)
		fmt.Printf("%d bytes from %s: seq=%d time=%s\n", ping.Size, id.ShortString(), seq, roundDur(r.RTT))
		if *count > 0 && seq >= *count {
			stop()
		}
	}
	printPingStats(id, seq, rtts)
	return nil
}

func printPingStats(id peer.ID, sent int, rtts []time.Duration) {
	fmt.Printf("--- %s ping statistics ---\n", id)
	if sent == 0 {
		fmt.Println("0 pings")
		return
	}
	lost := sent - len(rtts)
	fmt.Printf("%d sent, %d received, %.0f%% loss\n", sent, len(rtts), 100*float64(lost)/float64(sent))
	if len(rtts) == 0 {
		return
	}
	mn, mx, sum := rtts[0], rtts[0], time.Duration(0)
	for _, r := range rtts {
		mn, mx, sum = min(mn, r), max(mx, r), sum+r
	}
	avg := sum / time.Duration(len(rtts))
	var dev float64
	for _, r := range rtts {
		d := float64(r - avg)
		dev += d * d
	}
	mdev := time.Duration(math.Sqrt(dev / float64(len(rtts))))
	fmt.Printf("rtt min/avg/max/mdev = %s/%s/%s/%s\n", roundDur(mn), roundDur(avg), roundDur(mx), roundDur(mdev))
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}
