// Command community is a custom IPv8 community: message ID 1 is a signed
// Hello carrying one UTF-8 string — byte for byte the message py-ipv8
// declares as
//
//	class Hello(DataClassPayload[1]):
//	    text: str
//
// Every peer the community verifies is sent a Hello; every Hello received
// is printed.
//
// Run alone, it starts a tracker and three peers on 127.0.0.1 and lets them
// greet each other:
//
//	go run ./examples/community
//
// To join a real network (py-ipv8 peers of the same community ID included):
//
//	go run ./examples/community -bootstrap HOST:PORT [-community HEX] [-listen 0.0.0.0:8090]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/ipv8/go-ipv8/discovery"
	"github.com/ipv8/go-ipv8/discovery/community"
	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport/udp"
)

// MsgHello is the message ID of Hello.
const MsgHello = 1

// Hello is the payload of message 1: one varlenHutf8 string.
type Hello struct {
	Text string
}

// defaultID is the example's community ID (any 20 bytes name a community).
var defaultID = wire.CommunityID{'g', 'o', '-', 'i', 'p', 'v', '8', ' ', 'h', 'e', 'l', 'l', 'o', ' ', 'e', 'x', 'a', 'm', 'p', 'l'}

// HelloCommunity greets every peer it verifies.
type HelloCommunity struct {
	*community.Community
	name string
	out  io.Writer
	mu   sync.Mutex // orders lines on out
}

// NewHelloCommunity runs the community on ep; name is put in the greetings.
func NewHelloCommunity(ep *community.Endpoint, cfg community.Config, name string, out io.Writer) (*HelloCommunity, error) {
	c, err := community.New(ep, cfg)
	if err != nil {
		return nil, err
	}
	h := &HelloCommunity{Community: c, name: name, out: out}
	// Received Hellos: the signature was checked before the handler runs.
	if err := community.Register(c, MsgHello, func(m *community.Message, v *Hello) {
		h.printf("%s received from %s (%s): %q\n", h.name, m.Mid, m.From, v.Text)
	}); err != nil {
		return nil, err
	}
	// A newly verified peer gets a Hello.
	c.Subscribe(func(e discovery.Event) {
		if e.Kind != discovery.PeerAdded {
			return
		}
		msg := &Hello{Text: fmt.Sprintf("hello from %s", h.name)}
		if err := community.SendPayload(c, e.Peer.Addr, MsgHello, msg); err != nil {
			h.printf("%s: sending to %s: %v\n", h.name, e.Peer.Addr, err)
		}
	})
	return h, nil
}

func (h *HelloCommunity) printf(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fmt.Fprintf(h.out, format, args...)
}

func main() {
	boot := flag.String("bootstrap", "", "tracker address HOST:PORT (empty: run a local demo)")
	cidHex := flag.String("community", defaultID.String(), "community ID, 40 hex digits")
	listen := flag.String("listen", "0.0.0.0:0", "local UDP address")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	if *boot == "" {
		ctx, cancel := context.WithTimeout(ctx, 8*time.Second)
		defer cancel()
		if err := runLocal(ctx, 3, os.Stdout); err != nil {
			log.Fatal(err)
		}
		return
	}
	cid, err := wire.ParseCommunityID(*cidHex)
	if err != nil {
		log.Fatal(err)
	}
	tracker, err := netip.ParseAddrPort(*boot)
	if err != nil {
		log.Fatalf("-bootstrap wants IP:PORT: %v", err)
	}
	laddr, err := netip.ParseAddrPort(*listen)
	if err != nil {
		log.Fatal(err)
	}
	port, err := udp.Listen(udp.Config{Addr: laddr})
	if err != nil {
		log.Fatal(err)
	}
	defer port.Close()
	key, err := peer.GenerateKey(nil)
	if err != nil {
		log.Fatal(err)
	}
	h, err := NewHelloCommunity(community.NewEndpoint(port, nil), community.Config{
		ID: cid, Key: key, Bootstrap: []netip.AddrPort{tracker}, Advertise: &wire.Advert{Flags: wire.CapNoise},
	}, key.ID().ShortString(), os.Stdout)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s on %s, mid %s\n", key.ID(), port.LocalAddr(), h.Mid())
	h.Start()
	<-ctx.Done()
	h.Close()
}

// runLocal runs a tracker and n greeting peers on 127.0.0.1 until ctx ends.
func runLocal(ctx context.Context, n int, out io.Writer) error {
	open := func() (*udp.Port, *community.Endpoint, error) {
		p, err := udp.Listen(udp.Config{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return nil, nil, err
		}
		return p, community.NewEndpoint(p, nil), nil
	}
	tp, tep, err := open()
	if err != nil {
		return err
	}
	defer tp.Close()
	tk, _ := peer.GenerateKey(nil)
	tracker, err := community.New(tep, community.Config{ID: defaultID, Key: tk, AnswerOnly: true, MaxPeers: -1})
	if err != nil {
		return err
	}
	tracker.Start()
	defer tracker.Close()
	fmt.Fprintf(out, "tracker on %s\n", tp.LocalAddr())

	for i := range n {
		p, ep, err := open()
		if err != nil {
			return err
		}
		defer p.Close()
		k, _ := peer.GenerateKey(nil)
		h, err := NewHelloCommunity(ep, community.Config{
			ID: defaultID, Key: k, Bootstrap: []netip.AddrPort{tp.LocalAddr()},
			Advertise: &wire.Advert{Flags: wire.CapNoise},
		}, fmt.Sprintf("peer%d", i+1), out)
		if err != nil {
			return err
		}
		h.printf("peer%d on %s, mid %s\n", i+1, p.LocalAddr(), h.Mid())
		h.Start()
		defer h.Close()
	}
	<-ctx.Done()
	return nil
}
