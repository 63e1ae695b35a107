package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	ipv8 "github.com/ipv8/go-ipv8"
	"github.com/ipv8/go-ipv8/host"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocol"
	"github.com/ipv8/go-ipv8/protocols/perf"
	"github.com/ipv8/go-ipv8/protocols/ping"
	"github.com/ipv8/go-ipv8/transport"
)

func init() {
	register(command{name: "demo", summary: "run a handful of hosts on loopback and show them connect and talk", run: runDemo})
}

const (
	demoEcho protocol.ID = "/demo/echo/1"
	demoChat protocol.ID = "/demo/chat/1"
)

func runDemo(ctx context.Context, args []string) error {
	fs := newFlagSet("demo", "[--transport quic|udp] [-v]")
	tr := fs.String("transport", ipv8.QUIC, "transport the hosts use: quic or udp")
	verbose := fs.Bool("v", false, "log debug messages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelError
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}

	names := []string{"alice", "bob", "carol", "dave"}
	hosts := make(map[string]*host.Host)
	step := stepper()
	step("Starting %d hosts on loopback (%s transport), each with its own key and one UDP port", len(names), *tr)
	for _, n := range names {
		h, err := ipv8.New(ipv8.ListenAddrs("/ip4/127.0.0.1/udp/0"), ipv8.Transports(*tr), ipv8.Logger(logger))
		if err != nil {
			return err
		}
		defer h.Close()
		hosts[n] = h
		ping.Register(h)
		perf.Register(h)
		fmt.Printf("   %-6s %s  at %s\n", n, h.ID(), h.Addrs()[0])
	}
	alice, bob, carol, dave := hosts["alice"], hosts["bob"], hosts["carol"], hosts["dave"]

	// Services: an echo handler on every host, a datagram chat on dave.
	for _, h := range hosts {
		h.SetStreamHandler(demoEcho, func(s transport.Stream) {
			defer s.Close()
			io.Copy(s, s)
		})
	}
	chat := make(chan string, 1)
	dave.SetMessageHandler(demoChat, func(from peer.ID, data []byte) {
		chat <- fmt.Sprintf("%s says %q", nameOf(hosts, from), data)
	})

	step("bob, carol and dave connect to alice by address + peer ID")
	for _, n := range []string{"bob", "carol", "dave"} {
		start := time.Now()
		if err := hosts[n].Connect(ctx, alice.AddrInfo()); err != nil {
			return fmt.Errorf("%s → alice: %w", n, err)
		}
		fmt.Printf("   %-6s → alice  connected in %s\n", n, roundDur(time.Since(start)))
	}

	step("everyone pings alice")
	for _, n := range []string{"bob", "carol", "dave"} {
		s, err := hosts[n].NewStream(ctx, alice.ID(), ping.ID)
		if err != nil {
			return err
		}
		rtt, err := ping.Once(s)
		s.Close()
		if err != nil {
			return err
		}
		fmt.Printf("   %-6s → alice  rtt %s\n", n, roundDur(rtt))
	}

	step("bob learns carol's addresses (as discovery would) and dials her by peer ID only")
	bob.Peerstore().AddAddrs(carol.ID(), carol.Addrs(), host.TempAddrTTL)
	s, err := bob.NewStream(ctx, carol.ID(), demoEcho)
	if err != nil {
		return err
	}
	msg := "hello carol, this comes back to me"
	fmt.Fprintln(s, msg)
	s.CloseWrite()
	line, err := bufio.NewReader(s).ReadString('\n')
	s.Close()
	if err != nil {
		return err
	}
	fmt.Printf("   bob sent %q on %s and got back %q\n", msg, demoEcho, line[:len(line)-1])

	step("a stream for a protocol carol does not serve fails on bob's side, naming it")
	s, err = bob.NewStream(ctx, carol.ID(), "/demo/missing/1")
	if err == nil {
		s.Write([]byte("anyone?"))
		_, err = s.Read(make([]byte, 1))
		s.Close()
	}
	fmt.Printf("   error: %v (errors.Is ErrProtocolNotSupported: %v)\n", err, errors.Is(err, transport.ErrProtocolNotSupported))

	step("dave dials alice's address but claims it is carol's: the handshake refuses")
	impostor := peer.AddrInfo{ID: carol.ID(), Addrs: alice.Addrs()}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = dave.Connect(dctx, impostor)
	cancel()
	fmt.Printf("   error: %v\n   (errors.Is ErrWrongPeer: %v)\n", err, errors.Is(err, transport.ErrWrongPeer))

	step("carol sends dave an unreliable datagram message")
	carol.Peerstore().AddAddrs(dave.ID(), dave.Addrs(), host.TempAddrTTL)
	if err := carol.SendMessage(ctx, dave.ID(), demoChat, []byte("hi dave, by datagram")); err != nil {
		return err
	}
	select {
	case m := <-chat:
		fmt.Printf("   dave got: %s\n", m)
	case <-time.After(5 * time.Second):
		fmt.Println("   (the datagram was lost: datagrams are unreliable)")
	}

	step("bob measures throughput to alice (perf: 32 MiB each way)")
	res, err := perf.Run(ctx, bob, alice.ID(), 32<<20, 32<<20)
	if err != nil {
		return err
	}
	fmt.Printf("   upload %s, download %s\n", fmtRate(res.UploadRate()), fmtRate(res.DownloadRate()))
	st := bob.Conn(alice.ID()).Stats()
	fmt.Printf("   what bob's connection measured: srtt %s, min rtt %s, cwnd %s, %d packets sent, %d lost\n",
		roundDur(st.SmoothedRTT), roundDur(st.MinRTT), fmtBytes(st.CongestionWindow), st.PacketsSent, st.PacketsLost)

	step("what identify taught alice about bob")
	fmt.Printf("   agent %q, protocols %v\n", alice.Peerstore().Agent(bob.ID()), alice.Peerstore().Protocols(bob.ID()))

	step("done: closing every host")
	return nil
}

func nameOf(hosts map[string]*host.Host, id peer.ID) string {
	for n, h := range hosts {
		if h.ID() == id {
			return n
		}
	}
	return id.ShortString()
}

func stepper() func(format string, args ...any) {
	n := 0
	return func(format string, args ...any) {
		n++
		fmt.Printf("\n%d. "+format+"\n", append([]any{n}, args...)...)
	}
}
