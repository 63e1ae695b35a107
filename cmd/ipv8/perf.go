package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ipv8/go-ipv8/protocols/perf"
)

func init() {
	register(command{name: "perf", summary: "measure connect time and throughput each way to MULTIADDR/p2p/ID", run: runPerf})
}

func runPerf(ctx context.Context, args []string) error {
	fs := newFlagSet("perf", "[--upload SIZE] [--download SIZE] MULTIADDR/p2p/ID")
	up := fs.String("upload", "64MiB", "bytes to upload (units: B, KB, KiB, MB, MiB, GB, GiB)")
	down := fs.String("download", "64MiB", "bytes to download")
	var hf hostFlags
	hf.add(fs, "/ip4/0.0.0.0/udp/0", false)
	if err := fs.Parse(reorderFlags(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	upN, err := parseSize(*up)
	if err != nil {
		return fmt.Errorf("--upload: %w", err)
	}
	downN, err := parseSize(*down)
	if err != nil {
		return fmt.Errorf("--download: %w", err)
	}
	h, c, took, err := dialFromCLI(ctx, &hf, fs.Arg(0))
	if err != nil {
		return err
	}
	defer h.Close()
	fmt.Printf("connected to %s via %s (%s) in %s\n", c.RemotePeer(), c.RemoteMultiaddr(), c.Transport(), roundDur(took))
	res, err := perf.Run(ctx, h, c.RemotePeer(), upN, downN)
	if err != nil {
		return err
	}
	fmt.Printf("upload:   %s in %s = %s\n", fmtBytes(res.Uploaded), roundDur(res.Upload), fmtRate(res.UploadRate()))
	fmt.Printf("download: %s in %s = %s\n", fmtBytes(res.Downloaded), roundDur(res.Download), fmtRate(res.DownloadRate()))
	st := h.Conn(c.RemotePeer()).Stats()
	fmt.Printf("path:     srtt %s, min rtt %s, cwnd %s, lost %d of %d packets\n",
		roundDur(st.SmoothedRTT), roundDur(st.MinRTT), fmtBytes(st.CongestionWindow), st.PacketsLost, st.PacketsSent)
	return nil
}

// reorderFlags moves flags after the positional argument in front of it, so
// "perf ADDR --upload 1MiB" works as well as "perf --upload 1MiB ADDR".
func reorderFlags(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") && a != "-v" && a != "--v" {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

// parseSize reads "64MiB", "1GB", "1000".
func parseSize(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   uint64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := uint64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return uint64(n * float64(mult)), nil
}

func fmtBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func fmtRate(bps float64) string {
	return fmt.Sprintf("%.1f MB/s (%.2f Gbit/s)", bps/1e6, bps*8/1e9)
}
