package host_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	ipv8 "github.com/ipv8/go-ipv8"
	"github.com/ipv8/go-ipv8/host"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocol"
	"github.com/ipv8/go-ipv8/transport"
)

// newHost makes a host on loopback whose debug log is printed if the test
// fails.
func newHost(t *testing.T) *host.Host {
	t.Helper()
	log := &testLog{}
	h, err := ipv8.New(ipv8.ListenAddrs("/ip4/127.0.0.1/udp/0"),
		ipv8.Logger(slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		if t.Failed() {
			t.Logf("log of host %s:\n%s", h.ID().ShortString(), log.String())
		}
	})
	return h
}

type testLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func waitEvent[E host.Event](t *testing.T, sub *host.Subscription, match func(E) bool) E {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				t.Fatal("subscription closed")
			}
			if e, ok := ev.(E); ok && (match == nil || match(e)) {
				return e
			}
		case <-timeout:
			var zero E
			t.Fatalf("no %T event", zero)
		}
	}
}

func TestStreamToUnregisteredProtocolFailsNamingIt(t *testing.T) {
	a, b := newHost(t), newHost(t)
	ctx := ctxT(t)
	if err := a.Connect(ctx, b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	s, err := a.NewStream(ctx, b.ID(), "/nobody/serves/1")
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("x"))
	_, err = io.ReadAll(s)
	if !errors.Is(err, host.ErrProtocolNotSupported) {
		t.Fatalf("err = %v, want ErrProtocolNotSupported", err)
	}
	if want := "/nobody/serves/1"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name %s", err, want)
	}
}

func TestRemoveStreamHandlerRefusesNewStreams(t *testing.T) {
	a, b := newHost(t), newHost(t)
	ctx := ctxT(t)
	const p protocol.ID = "/x/1"
	b.SetStreamHandler(p, func(s transport.Stream) { s.Write([]byte("ok")); s.Close() })
	if err := a.Connect(ctx, b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	s, _ := a.NewStream(ctx, b.ID(), p)
	if got, err := io.ReadAll(s); err != nil || string(got) != "ok" {
		t.Fatalf("served: %q %v", got, err)
	}
	b.RemoveStreamHandler(p)
	s, _ = a.NewStream(ctx, b.ID(), p)
	if _, err := io.ReadAll(s); !errors.Is(err, transport.ErrProtocolNotSupported) {
		t.Fatalf("after removal: %v", err)
	}
}

func TestNewStreamPicksAProtocolThePeerServes(t *testing.T) {
	a, b := newHost(t), newHost(t)
	ctx := ctxT(t)
	b.SetStreamHandler("/v2", func(s transport.Stream) { s.Write([]byte("v2")); s.Close() })
	sub := a.Subscribe(16)
	defer sub.Close()
	if err := a.Connect(ctx, b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	waitEvent[host.EvtPeerIdentified](t, sub, nil)
	s, err := a.NewStream(ctx, b.ID(), "/v3", "/v2")
	if err != nil {
		t.Fatal(err)
	}
	if s.Protocol() != "/v2" {
		t.Fatalf("chose %s", s.Protocol())
	}
	if got, _ := io.ReadAll(s); string(got) != "v2" {
		t.Fatalf("got %q", got)
	}
	if _, err := a.NewStream(ctx, b.ID(), "/v3", "/v4"); !errors.Is(err, host.ErrProtocolNotSupported) {
		t.Fatalf("no common protocol: %v", err)
	}
}

func TestIdentifyRecordsProtocolsAgentAndObservedAddr(t *testing.T) {
	a, b := newHost(t), newHost(t)
	ctx := ctxT(t)
	b.SetStreamHandler("/only-b/1", func(s transport.Stream) { s.Close() })
	sub := a.Subscribe(16)
	defer sub.Close()
	if err := a.Connect(ctx, b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	ev := waitEvent[host.EvtPeerIdentified](t, sub, nil)
	if ev.Peer != b.ID() || ev.ObservedAddr == nil {
		t.Fatalf("event %+v", ev)
	}
	if ok, known := a.Peerstore().SupportsProtocol(b.ID(), "/only-b/1"); !ok || !known {
		t.Fatal("b's protocol not recorded")
	}
	if a.Peerstore().Agent(b.ID()) == "" {
		t.Fatal("no agent")
	}
	// a sees itself at its own loopback address.
	if got, want := ev.ObservedAddr.String(), a.Addrs()[0].String(); got != want {
		t.Fatalf("observed %s, want %s", got, want)
	}
}

func TestSimultaneousDialsCollapseToOneConn(t *testing.T) {
	for i := range 5 {
		a, b := newHost(t), newHost(t)
		ctx := ctxT(t)
		a.Peerstore().AddAddrs(b.ID(), b.Addrs(), host.TempAddrTTL)
		b.Peerstore().AddAddrs(a.ID(), a.Addrs(), host.TempAddrTTL)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		wg.Add(2)
		go func() { defer wg.Done(); errs[0] = a.Connect(ctx, peer.AddrInfo{ID: b.ID()}) }()
		go func() { defer wg.Done(); errs[1] = b.Connect(ctx, peer.AddrInfo{ID: a.ID()}) }()
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("run %d: %v", i, errs)
		}
		// Both sides settle on the same single Conn (a side may see the
		// second Conn a little after its own dial returned).
		time.Sleep(300 * time.Millisecond)
		deadline := time.Now().Add(10 * time.Second)
		for {
			ca, cb := a.Conn(b.ID()), b.Conn(a.ID())
			if ca != nil && cb != nil && ca.LocalMultiaddr().Equal(cb.RemoteMultiaddr()) && len(a.Conns()) == 1 && len(b.Conns()) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %d: no single agreed Conn: a→%v b→%v", i, ca, cb)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// And it works in both directions.
		b.SetStreamHandler("/e", func(s transport.Stream) { io.Copy(s, s); s.Close() })
		s, err := a.NewStream(ctx, b.ID(), "/e")
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte("hi"))
		s.CloseWrite()
		if got, err := io.ReadAll(s); err != nil || string(got) != "hi" {
			t.Fatalf("run %d: echo %q %v", i, got, err)
		}
	}
}

func TestConcurrentConnectsShareOneDial(t *testing.T) {
	a, b := newHost(t), newHost(t)
	ctx := ctxT(t)
	sub := b.Subscribe(64)
	defer sub.Close()
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Connect(ctx, b.AddrInfo()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	waitEvent[host.EvtPeerConnected](t, sub, nil)
	time.Sleep(200 * time.Millisecond)
	if n := len(b.Conns()); n != 1 {
		t.Fatalf("b has %d conns", n)
	}
	for {
		select {
		case ev := <-sub.C:
			if _, ok := ev.(host.EvtPeerConnected); ok {
				t.Fatal("a second connection reached b")
			}
			continue
		default:
		}
		break
	}
}

func TestMessagesByProtocol(t *testing.T) {
	a, b := newHost(t), newHost(t)
	ctx := ctxT(t)
	got := make(chan string, 4)
	b.SetMessageHandler("/m/1", func(from peer.ID, data []byte) {
		if from != a.ID() {
			t.Errorf("from %s", from)
		}
		got <- string(data)
	})
	b.Peerstore() // b needs nothing: a dials.
	a.Peerstore().AddAddrs(b.ID(), b.Addrs(), host.TempAddrTTL)
	// Datagrams may be lost even on loopback; send until one arrives.
	deadline := time.After(10 * time.Second)
	for {
		if err := a.SendMessage(ctx, b.ID(), "/m/1", []byte("hello")); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if m != "hello" {
				t.Fatalf("got %q", m)
			}
			return
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatal("no message arrived")
		}
	}
}

func TestMessageTooLargeIsRefused(t *testing.T) {
	a, b := newHost(t), newHost(t)
	ctx := ctxT(t)
	if err := a.Connect(ctx, b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	err := a.SendMessage(ctx, b.ID(), "/m/1", make([]byte, 64<<10))
	if !errors.Is(err, host.ErrMessageTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

func TestEventsConnectedAndDisconnected(t *testing.T) {
	a, b := newHost(t), newHost(t)
	ctx := ctxT(t)
	sa, sb := a.Subscribe(16), b.Subscribe(16)
	defer sa.Close()
	defer sb.Close()
	if err := a.Connect(ctx, b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	if e := waitEvent[host.EvtPeerConnected](t, sa, nil); e.Peer != b.ID() || e.Inbound {
		t.Fatalf("a: %+v", e)
	}
	if e := waitEvent[host.EvtPeerConnected](t, sb, nil); e.Peer != a.ID() || !e.Inbound {
		t.Fatalf("b: %+v", e)
	}
	a.ClosePeer(b.ID())
	waitEvent[host.EvtPeerDisconnected](t, sa, func(e host.EvtPeerDisconnected) bool { return e.Peer == b.ID() })
	waitEvent[host.EvtPeerDisconnected](t, sb, func(e host.EvtPeerDisconnected) bool { return e.Peer == a.ID() })
	if a.Conn(b.ID()) != nil {
		t.Fatal("Conn still listed")
	}
	// The peer's addresses are kept after the disconnect.
	if len(a.Peerstore().Addrs(b.ID())) == 0 {
		t.Fatal("addresses forgotten")
	}
}

func TestBadInputReturnsErrors(t *testing.T) {
	a, b := newHost(t), newHost(t)
	ctx := ctxT(t)
	if err := a.Connect(ctx, peer.AddrInfo{ID: a.ID()}); !errors.Is(err, host.ErrDialSelf) {
		t.Fatalf("self: %v", err)
	}
	if err := a.Connect(ctx, peer.AddrInfo{ID: "garbage"}); !errors.Is(err, peer.ErrInvalidID) {
		t.Fatalf("bad id: %v", err)
	}
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID()}); !errors.Is(err, host.ErrNoAddresses) {
		t.Fatalf("no addrs: %v", err)
	}
	tcp := ma.StringCast("/ip4/127.0.0.1/tcp/1")
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: []ma.Multiaddr{tcp}}); !errors.Is(err, host.ErrNoAddresses) {
		t.Fatalf("undialable addr: %v", err)
	}
	if _, err := a.NewStream(ctx, b.ID()); err == nil {
		t.Fatal("NewStream without protocols")
	}
	if _, err := a.NewStream(ctx, b.ID(), ""); !errors.Is(err, protocol.ErrInvalidID) {
		t.Fatalf("empty protocol: %v", err)
	}
	// A cancelled context returns promptly.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	start := time.Now()
	err := a.Connect(cctx, b.AddrInfo())
	if err == nil && a.Conn(b.ID()) == nil {
		t.Fatal("no error and no conn")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("cancelled connect did not return promptly")
	}
	// A closed host refuses everything.
	a.Close()
	if err := a.Connect(ctx, b.AddrInfo()); !errors.Is(err, host.ErrClosed) {
		t.Fatalf("closed host connect: %v", err)
	}
	if _, err := a.NewStream(ctx, b.ID(), "/x"); !errors.Is(err, host.ErrClosed) {
		t.Fatalf("closed host stream: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCloseReleasesPort(t *testing.T) {
	h := newHost(t)
	addr := h.Addrs()[0]
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	h2, err := ipv8.New(ipv8.ListenAddrs(addr.String()))
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	h2.Close()
}
