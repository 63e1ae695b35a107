package netsim

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/internal/clock"
)

var (
	ipA = netip.MustParseAddr("192.0.2.1")
	ipB = netip.MustParseAddr("192.0.2.2")
	ipC = netip.MustParseAddr("192.0.2.3")
)

// got is one packet a recorder saw.
type got struct {
	data []byte
	from netip.AddrPort
	at   time.Time
}

// recorder collects the packets delivered to a Conn through its handler.
type recorder struct {
	mu   sync.Mutex
	pkts []got
}

func record(c *Conn, clk clock.Clock) *recorder {
	r := &recorder{}
	c.SetHandler(func(pkt []byte, from netip.AddrPort) {
		now := clk.Now()
		r.mu.Lock()
		r.pkts = append(r.pkts, got{data: pkt, from: from, at: now})
		r.mu.Unlock()
	})
	return r
}

func (r *recorder) all() []got {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]got(nil), r.pkts...)
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pkts)
}

// seqs returns the sequence numbers (first 4 bytes) of the packets seen.
func (r *recorder) seqs() []uint32 {
	var s []uint32
	for _, p := range r.all() {
		s = append(s, binary.BigEndian.Uint32(p.data))
	}
	return s
}

// numbered is a packet of size bytes starting with seq.
func numbered(seq uint32, size int) []byte {
	b := make([]byte, max(size, 4))
	binary.BigEndian.PutUint32(b, seq)
	return b
}

func listen(t testing.TB, h *Host, port uint16) *Conn {
	t.Helper()
	c, err := h.ListenUDP(port)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustWrite(t testing.TB, c *Conn, b []byte, to netip.AddrPort) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond for up to 10 s (generous: -race on a loaded machine).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// pair builds two public hosts A and B with links la, lb and a conn on
// each (ports 1000 and 2000).
func pair(t testing.TB, n *Network, la, lb Link) (a, b *Conn) {
	t.Helper()
	a = listen(t, n.NewHost(ipA, la), 1000)
	b = listen(t, n.NewHost(ipB, lb), 2000)
	return a, b
}

func virtualNet(t testing.TB, seed uint64) *Network {
	n := New(Config{Seed: seed, Virtual: true})
	t.Cleanup(func() { n.Close() })
	return n
}

func realNet(t testing.TB, seed uint64) *Network {
	n := New(Config{Seed: seed})
	t.Cleanup(func() { n.Close() })
	return n
}
