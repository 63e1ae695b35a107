package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/quic-go/quic-go"

	ipv8 "github.com/ipv8/go-ipv8"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
)

// The idle-session measurement runs the server in the benchmark's process
// and the clients in a child process (this test binary again, told by
// these variables to be the clients), so that the server's heap and
// goroutine counts hold nothing but what it keeps for its sessions.
const (
	idleChildEnv  = "BENCH_IDLE_CHILD"  // the stack whose clients to run
	idleTargetEnv = "BENCH_IDLE_TARGET" // what to dial
	idleCountEnv  = "BENCH_IDLE_N"      // how many sessions to open
	idleTLSEnv    = "BENCH_IDLE_TLS"    // quic-go: directory of the client's credentials
	// IdleSessionsEnv overrides how many sessions every stack opens.
	idleSessionsEnv = "BENCH_IDLE_SESSIONS"
	// idleInFlight is how many sessions the clients open at once.
	idleInFlight = 16
	// idleSettle is how long the sessions sit idle before the measurement,
	// for what follows a handshake (identify, tickets, first ACKs) to end.
	idleSettle = 3 * time.Second
	// idleChecks is how many of the idle sessions must still carry a
	// stream after the measurement: what was measured must be usable.
	idleChecks = 8
)

// idleSessions is how many sessions each stack opens by default. go-libp2p
// needs a host per client identity (a host has one connection per peer),
// and a go-libp2p host costs the client process megabytes, so its stacks
// open fewer; the server-side figures are per session either way.
var idleSessions = map[string]int{
	stackQUIC:       10_000,
	stackLibp2pQUIC: 10_000,
	stackLibp2pTCP:  10_000,
	stackIPv8QUIC:   10_000,
	stackIPv8UDP:    10_000,
	stackUDPParts:   10_000,
}

func TestMain(m *testing.M) {
	if kind := os.Getenv(idleChildEnv); kind != "" {
		os.Exit(runIdleClients(kind))
	}
	os.Exit(m.Run())
}

// BenchmarkIdleSessions opens many sessions from a client process to one
// server in this process, lets them sit idle, and reports what the server
// holds per open session: heap bytes (live heap after GC), goroutines and
// goroutine stack bytes, plus the client process's heap per session (for
// quic-go, whose clients share one socket and transport, that is the cost
// of a client session; for the host-based stacks it includes a whole host
// per client identity). Target for ipv8-udp: ≤ 4 KiB heap and 0
// goroutines per idle session. Run it with -benchtime 1x: one measurement
// opens every session.
func BenchmarkIdleSessions(b *testing.B) {
	why := udpUnavailable() // the skip shows with -v
	for _, name := range []string{stackQUIC, stackLibp2pQUIC, stackLibp2pTCP, stackIPv8QUIC, stackUDPParts, stackIPv8UDP} {
		b.Run(name, func(b *testing.B) {
			if name == stackIPv8UDP && why != "" {
				b.Skip(why)
			}
			n := idleSessions[name]
			if s := os.Getenv(idleSessionsEnv); s != "" {
				v, err := strconv.Atoi(s)
				if err != nil || v <= 0 {
					b.Fatalf("%s=%q: want a positive number", idleSessionsEnv, s)
				}
				n = v
			}
			for range b.N {
				measureIdle(b, name, n)
			}
		})
	}
}

// idleServer is the server side of one stack for the idle measurement.
type idleServer struct {
	target string   // what the clients dial
	env    []string // more for the client process
	open   func() int
	// serve, when set, makes the server answer echo streams on the
	// sessions it kept idle (after the measurement).
	serve func()
}

func startIdleServer(b *testing.B, name string) idleServer {
	switch name {
	case stackQUIC:
		var mu sync.Mutex
		var conns []*quic.Conn
		// The server keeps each connection and runs nothing per connection
		// itself: what remains is quic-go's own state.
		srv := newBareQUICServer(b, func(c *quic.Conn) {
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		})
		dir := b.TempDir()
		if err := srv.tls.saveClient(dir); err != nil {
			b.Fatal(err)
		}
		return idleServer{
			target: srv.addr.String(),
			env:    []string{idleTLSEnv + "=" + dir},
			open: func() int {
				mu.Lock()
				defer mu.Unlock()
				n := 0
				for _, c := range conns {
					if c.Context().Err() == nil {
						n++
					}
				}
				return n
			},
		}
	case stackLibp2pQUIC, stackLibp2pTCP:
		srv := newLibp2pServer(b, name)
		ai := srv.addrInfo()
		addrs, err := lpeer.AddrInfoToP2pAddrs(&ai)
		if err != nil || len(addrs) == 0 {
			b.Fatalf("%s: server addresses %v: %v", name, ai, err)
		}
		return idleServer{
			target: addrs[0].String(),
			open:   func() int { return len(srv.h.Network().Conns()) },
		}
	case stackIPv8QUIC, stackIPv8UDP:
		tname := ipv8.QUIC
		if name == stackIPv8UDP {
			tname = ipv8.UDP
		}
		srv, err := newIPv8Server(b, tname)
		if err != nil {
			b.Fatal(err)
		}
		addrs := srv.h.AddrInfo().P2pAddrs()
		if len(addrs) == 0 {
			b.Fatalf("%s: server has no address", name)
		}
		return idleServer{
			target: addrs[0].String(),
			open:   func() int { return len(srv.h.Conns()) },
		}
	case stackUDPParts:
		var mu sync.Mutex
		var conns []transport.Conn
		// Like quic-go's server: keep each Conn, run nothing per Conn.
		srv := newUDPPartsServer(b, new(atomic.Int64), func(c transport.Conn) {
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		})
		return idleServer{
			target: srv.port.LocalAddr().String() + " " + srv.key.ID().String(),
			serve: func() {
				mu.Lock()
				defer mu.Unlock()
				for _, c := range conns {
					go servePartsConn(c) // ends with its Conn
				}
			},
			open: func() int {
				mu.Lock()
				defer mu.Unlock()
				n := 0
				for _, c := range conns {
					select {
					case <-c.Done():
					default:
						n++
					}
				}
				return n
			},
		}
	}
	b.Fatalf("unknown stack %q", name)
	return idleServer{}
}

type memSnapshot struct {
	heap, stack uint64
	goroutines  int
}

// snapshot collects garbage and reads the live heap, the goroutine stacks
// in use and the number of goroutines.
func snapshot() memSnapshot {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSnapshot{heap: ms.HeapAlloc, stack: ms.StackInuse, goroutines: runtime.NumGoroutine()}
}

func measureIdle(b *testing.B, name string, n int) {
	srv := startIdleServer(b, name)
	time.Sleep(100 * time.Millisecond) // the server's own start-up settles
	before := snapshot()

	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), idleChildEnv+"="+name, idleTargetEnv+"="+srv.target, idleCountEnv+"="+strconv.Itoa(n))
	cmd.Env = append(cmd.Env, srv.env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close() // the clients exit when their stdin ends
		cmd.Wait()
	}()
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil {
		b.Fatalf("%s: client process ended before its sessions were open: %v", name, err)
	}
	var opened, cheap, cgor int
	if _, err := fmt.Sscanf(line, "ready %d %d %d", &opened, &cheap, &cgor); err != nil {
		b.Fatalf("%s: client process: %s", name, strings.TrimSpace(line))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for srv.open() < opened && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	setup := time.Since(start)
	time.Sleep(idleSettle)
	after := snapshot()
	open := srv.open()
	if open < n*99/100 {
		b.Fatalf("%s: only %d of %d sessions open on the server", name, open, n)
	}
	per := func(a, c uint64) float64 { return (float64(a) - float64(c)) / float64(open) }
	b.ReportMetric(float64(open), "sessions")
	b.ReportMetric(per(after.heap, before.heap), "heap-B/session")
	b.ReportMetric(float64(after.goroutines-before.goroutines)/float64(open), "goroutines/session")
	b.ReportMetric(per(after.stack, before.stack), "stack-B/session")
	b.ReportMetric(float64(cheap)/float64(opened), "client-heap-B/session")
	b.ReportMetric(float64(cgor)/float64(opened), "client-goroutines/session")
	b.ReportMetric(setup.Seconds(), "setup-s")
	b.ReportMetric(0, "ns/op")

	// The sessions measured must still work: the clients open an echo
	// stream on a few of them, spread over the whole set.
	if srv.serve != nil {
		srv.serve()
	}
	if _, err := fmt.Fprintf(stdin, "check %d\n", idleChecks); err != nil {
		b.Fatalf("%s: asking the clients to check their sessions: %v", name, err)
	}
	line, err = out.ReadString('\n')
	if err != nil {
		b.Fatalf("%s: client process ended while checking its sessions: %v", name, err)
	}
	var checked int
	if _, err := fmt.Sscanf(line, "checked %d", &checked); err != nil {
		b.Fatalf("%s: checking idle sessions: %s", name, strings.TrimSpace(line))
	}
	if checked != idleChecks && !strings.HasPrefix(strings.TrimSpace(line), "checked 0 unsupported") {
		b.Fatalf("%s: %d of %d idle sessions carried an echo stream: %s", name, checked, idleChecks, strings.TrimSpace(line))
	}
}

// runIdleClients is the client process: it opens the sessions, prints
// "ready <sessions> <heap bytes> <goroutines>" (what the sessions added in
// this process) and keeps them open until its stdin ends.
func runIdleClients(kind string) int {
	fail := func(err error) int {
		fmt.Printf("error: %v\n", err)
		return 1
	}
	n, err := strconv.Atoi(os.Getenv(idleCountEnv))
	if err != nil {
		return fail(fmt.Errorf("%s: %w", idleCountEnv, err))
	}
	target := os.Getenv(idleTargetEnv)
	before := snapshot()

	// open makes and connects session i, and returns what keeps it alive.
	var open func(ctx context.Context) (any, error)
	switch kind {
	case stackQUIC:
		tlsConf, err := loadClientTLS(os.Getenv(idleTLSEnv))
		if err != nil {
			return fail(err)
		}
		addr, err := net.ResolveUDPAddr("udp", target)
		if err != nil {
			return fail(err)
		}
		// One socket and one quic.Transport for every client session.
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return fail(err)
		}
		tr := &quic.Transport{Conn: udp}
		open = func(ctx context.Context) (any, error) { return tr.Dial(ctx, addr, tlsConf, bareQUICConfig) }
	case stackLibp2pQUIC, stackLibp2pTCP:
		ai, err := lpeer.AddrInfoFromString(target)
		if err != nil {
			return fail(err)
		}
		open = func(ctx context.Context) (any, error) {
			c, err := newLibp2pClient(kind, *ai)
			if err != nil {
				return nil, err
			}
			return c, c.connect(ctx)
		}
	case stackIPv8QUIC, stackIPv8UDP:
		ai, err := peer.AddrInfoFromString(target)
		if err != nil {
			return fail(err)
		}
		tname := ipv8.QUIC
		if kind == stackIPv8UDP {
			tname = ipv8.UDP
		}
		open = func(ctx context.Context) (any, error) {
			// One socket per client host (no kernel steering, which would
			// take two), to stay within the file descriptor limit.
			c, err := newIPv8Client(tname, *ai, ipv8.DisableSteering())
			if err != nil {
				return nil, err
			}
			return c, c.connect(ctx)
		}
	case stackUDPParts:
		addrText, idText, _ := strings.Cut(target, " ")
		addr, err := netip.ParseAddrPort(addrText)
		if err != nil {
			return fail(err)
		}
		id, err := peer.Decode(idText)
		if err != nil {
			return fail(err)
		}
		open = func(ctx context.Context) (any, error) {
			c, err := newUDPPartsClient(addr, id, true)
			if err != nil {
				return nil, err
			}
			return c, c.connect(ctx)
		}
	default:
		return fail(fmt.Errorf("unknown stack %q", kind))
	}

	keep := make([]any, n)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range idleInFlight {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
				k, err := open(ctx)
				cancel()
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("session %d: %w", i, err) })
					next.Store(int64(n))
					return
				}
				keep[i] = k
				if (i+1)%1000 == 0 {
					fmt.Fprintf(os.Stderr, "bench: %s clients: %d sessions open\n", kind, i+1)
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return fail(firstErr)
	}
	after := snapshot()
	fmt.Printf("ready %d %d %d\n", n, int64(after.heap)-int64(before.heap), after.goroutines-before.goroutines)
	// "check k" opens an echo stream on k sessions spread over all of them
	// and answers "checked <how many worked>"; stdin's end ends the clients.
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var k int
		if _, err := fmt.Sscanf(in.Text(), "check %d", &k); err != nil || k <= 0 {
			fmt.Printf("error: unknown command %q\n", in.Text())
			continue
		}
		fmt.Println(checkIdle(keep, k))
	}
	runtime.KeepAlive(keep)
	return 0
}

// checkIdle opens an echo stream on k of the sessions and reports how many
// worked, with the first error.
func checkIdle(keep []any, k int) string {
	var firstErr error
	ok := 0
	for j := range k {
		i := j * len(keep) / k
		c, can := keep[i].(interface{ echo(context.Context) error })
		if !can {
			return "checked 0 unsupported"
		}
		// echo's context bounds the stream's opening only: the wait for
		// the answer is bounded here (a stuck one is left behind; the
		// process ends soon after).
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res := make(chan error, 1)
		go func() { res <- c.echo(ctx) }()
		var err error
		select {
		case err = <-res:
		case <-ctx.Done():
			err = fmt.Errorf("no echo within 10 s")
		}
		cancel()
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("session %d: %w", i, err)
			}
			continue
		}
		ok++
	}
	if firstErr != nil {
		return fmt.Sprintf("checked %d %v", ok, firstErr)
	}
	return fmt.Sprintf("checked %d", ok)
}
