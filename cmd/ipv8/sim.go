package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/ipv8/go-ipv8/discovery/community"
	"github.com/ipv8/go-ipv8/discovery/community/sim"
)

func init() {
	register(command{name: "sim", summary: "simulate community discovery with N hosts on a virtual network", run: runSim})
}

func runSim(ctx context.Context, args []string) error {
	fs := newFlagSet("sim", "--nodes N [--nat-fraction 0.3] [--seconds 60] [--trackers 3] [--target 20] [--seed 1] [--edge-walk] [--json]")
	nodes := fs.Int("nodes", 1000, "hosts to simulate (besides the trackers)")
	natFraction := fs.Float64("nat-fraction", 0.3, "fraction of hosts behind port-restricted NATs")
	seconds := fs.Float64("seconds", 60, "simulated seconds at most")
	trackers := fs.Int("trackers", 3, "bootstrap trackers")
	target := fs.Int("target", community.DefaultTargetPeers, "verified peers each host must reach")
	seed := fs.Uint64("seed", 1, "seed of every random choice (same seed, same run)")
	loss := fs.Float64("loss", 0, "packet loss rate of every access link")
	edge := fs.Bool("edge-walk", false, "use EdgeWalk instead of RandomWalk")
	full := fs.Bool("full", false, "run all the simulated seconds even after every host converged")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *natFraction == 0 {
		*natFraction = -1 // sim.Config: negative means none
	}
	cfg := sim.Config{
		Nodes: *nodes, Trackers: *trackers, NATFraction: *natFraction, Target: *target, Seed: *seed,
		Duration: time.Duration(*seconds * float64(time.Second)), Loss: *loss, StopWhenConverged: !*full,
	}
	if *edge {
		cfg.Strategy = community.EdgeWalk{}
	}
	lastPrint, allPrinted := time.Duration(-1), false
	if !*quiet {
		cfg.Progress = func(p sim.Progress) {
			all := p.Converged == p.Nodes && !allPrinted
			if p.Simulated-lastPrint >= 5*time.Second || all {
				lastPrint, allPrinted = p.Simulated, allPrinted || all
				fmt.Fprintf(os.Stderr, "t=%5.1fs  %d/%d hosts at %d+ verified peers\n",
					p.Simulated.Seconds(), p.Converged, p.Nodes, *target)
			}
			if ctx.Err() != nil {
				// The simulation runs on this goroutine; an interrupt
				// ends the process.
				os.Exit(130)
			}
		}
	}
	res, err := sim.Run(cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Println(res)
	if res.AllConvergedAt < 0 {
		return fmt.Errorf("%d of %d hosts did not reach %d verified peers in %.0f simulated seconds",
			res.Nodes-res.Converged, res.Nodes, *target, *seconds)
	}
	return nil
}
