package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/ipv8/go-ipv8/nat"
	"github.com/ipv8/go-ipv8/nat/punch"
	"github.com/ipv8/go-ipv8/nat/relay"
	"github.com/ipv8/go-ipv8/nat/stun"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
	"github.com/ipv8/go-ipv8/transport/udp"
)

func init() {
	register(command{name: "relay", summary: "run a relay for peers that cannot reach each other (circuit relay with limits; also answers STUN)", run: runRelay})
	register(command{name: "punch", summary: "punch a hole to a peer through a relay (--wait on one side, --peer ID on the other)", run: runPunch})
}

// punchOut is where relay and punch print (tests capture it).
var punchOut io.Writer = os.Stdout

func runRelay(ctx context.Context, args []string) error {
	fs := newFlagSet("relay", "--listen IP:PORT [limits]")
	listen := fs.String("listen", "0.0.0.0:4000", "address of the relay's port")
	maxRes := fs.Int("max-reservations", 0, "reservations in total (default 1024)")
	perIP := fs.Int("max-reservations-per-ip", 0, "reservations from one IP (default 8)")
	maxCirc := fs.Int("max-circuits", 0, "open circuits (default 1024)")
	perPeer := fs.Int("max-circuits-per-peer", 0, "circuits a peer takes part in (default 16)")
	dur := fs.Duration("circuit-duration", 0, "a circuit's lifetime (default 1h)")
	bytes := fs.Uint64("circuit-bytes", 0, "a circuit's data in both directions (default 1 GiB)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	addr, err := netip.ParseAddrPort(*listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	key, err := peer.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	port, err := udp.Listen(udp.Config{Addr: addr, DisableSteering: true})
	if err != nil {
		return err
	}
	defer port.Close()
	se := stun.Attach(port, stun.EndpointConfig{})
	defer se.Close()
	ep, err := relay.New(port, key, relay.Config{Serve: true, Limits: relay.Limits{
		MaxReservations: *maxRes, MaxReservationsPerIP: *perIP, MaxCircuits: *maxCirc,
		MaxCircuitsPerPeer: *perPeer, CircuitDuration: *dur, CircuitBytes: *bytes,
	}})
	if err != nil {
		return err
	}
	defer ep.Close()
	fmt.Fprintf(punchOut, "relay: %s listening on %s\n", key.ID(), port.LocalAddr())
	<-ctx.Done()
	st := ep.Stats()
	fmt.Fprintf(punchOut, "relay: %d circuits opened, %d bytes relayed, %d requests refused\n", st.CircuitsOpened, st.BytesRelayed, st.Refused)
	return nil
}

func runPunch(ctx context.Context, args []string) error {
	fs := newFlagSet("punch", "--relay IP:PORT (--wait | --peer ID) [--stun IP:PORT,...]")
	relayFlag := fs.String("relay", "", "the relay both peers reach (required)")
	wait := fs.Bool("wait", false, "reserve at the relay, print this peer's ID and answer punches")
	target := fs.String("peer", "", "the peer (its ID, printed by its --wait) to punch to")
	stunFlag := fs.String("stun", "", "STUN servers (comma list; default: the relay, which answers STUN); four sockets at two IPs tell the port allocation")
	filtering := fs.String("filtering", "unknown", "this NAT's filtering, if known from 'ipv8 nat': endpoint-independent, address-dependent, address-and-port-dependent")
	count := fs.Int("count", 1, "with --wait: punches to answer before exiting (0: until interrupted)")
	timeout := fs.Duration("timeout", 30*time.Second, "with --peer: give up after this")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *relayFlag == "" || *wait == (*target != "") || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	relayAt, err := netip.ParseAddrPort(*relayFlag)
	if err != nil {
		return fmt.Errorf("--relay: %w", err)
	}
	servers := []netip.AddrPort{relayAt}
	if *stunFlag != "" {
		servers = nil
		for _, s := range strings.Split(*stunFlag, ",") {
			a, err := netip.ParseAddrPort(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("--stun: %w", err)
			}
			servers = append(servers, a)
		}
	}
	var filt nat.Behavior
	if err := filt.UnmarshalText([]byte(*filtering)); err != nil {
		return fmt.Errorf("--filtering: %w", err)
	}
	key, err := peer.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	port, err := udp.Listen(udp.Config{Addr: netip.AddrPortFrom(netip.IPv4Unspecified(), 0), DisableSteering: true})
	if err != nil {
		return err
	}
	defer port.Close()
	se := stun.Attach(port, stun.EndpointConfig{})
	defer se.Close()
	ep, err := relay.New(port, key, relay.Config{})
	if err != nil {
		return err
	}
	defer ep.Close()
	p, err := punch.New(port, punch.Config{Self: func(ctx context.Context) (punch.Info, error) {
		return punch.Observe(ctx, se, servers, filt)
	}})
	if err != nil {
		return err
	}
	defer p.Close()
	route := func(c *relay.Circuit) {
		c.SetHandler(func(pkt []byte) {
			if len(pkt) > 0 && pkt[0] == transport.TypePunch {
				p.HandleSignal(pkt, c)
			}
		})
	}
	if *wait {
		return punchWait(ctx, ep, p, route, relayAt, key.ID(), *count)
	}
	id, err := peer.Decode(*target)
	if err != nil {
		return fmt.Errorf("--peer: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c, err := ep.Connect(ctx, relayAt, id)
	if err != nil {
		return err
	}
	route(c)
	res, err := p.Initiate(ctx, c)
	if err != nil {
		return err
	}
	printResult(res)
	if res.Err != nil {
		rtt, err := p.PingChannel(ctx, c)
		if err != nil {
			return fmt.Errorf("no direct path, and the relay does not answer: %w", err)
		}
		fmt.Fprintf(punchOut, "punch: relayed path RTT %s\n", rtt.Round(10*time.Microsecond))
		return nil
	}
	for range 3 {
		rtt, err := res.Path.Ping(ctx)
		if err != nil {
			return fmt.Errorf("the punched path stopped answering: %w", err)
		}
		fmt.Fprintf(punchOut, "punch: direct path RTT %s\n", rtt.Round(10*time.Microsecond))
	}
	return nil
}

func punchWait(ctx context.Context, ep *relay.Endpoint, p *punch.Puncher, route func(*relay.Circuit), relayAt netip.AddrPort, id peer.ID, count int) error {
	res, err := ep.Reserve(ctx, relayAt)
	if err != nil {
		return err
	}
	fmt.Fprintf(punchOut, "punch: %s reserved at %s, seen as %s\n", id, relayAt, res.Observed())
	go func() {
		for {
			c, err := ep.Accept(ctx)
			if err != nil {
				return
			}
			route(c)
		}
	}()
	for n := 0; count == 0 || n < count; n++ {
		r, err := p.Accept(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
		printResult(r)
	}
	// Let the initiator finish its pings over the path.
	select {
	case <-ctx.Done():
	case <-time.After(2 * time.Second):
	}
	return nil
}

func printResult(r *punch.Result) {
	if r.Err != nil {
		fmt.Fprintf(punchOut, "punch: %s: %v\n", r.Strategy, r.Err)
		return
	}
	fmt.Fprintf(punchOut, "punch: %s path to %s in %s (%d probes; channel RTT %s)\n",
		r.Strategy, r.Path.Addr(), r.Elapsed.Round(10*time.Microsecond), r.Probes, r.ChannelRTT.Round(10*time.Microsecond))
}
