package netsim

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"
)

func TestReadDeadlineTimesOut(t *testing.T) {
	n := realNet(t, 1)
	a, _ := pair(t, n, Link{}, Link{})
	start := time.Now()
	a.SetReadDeadline(start.Add(20 * time.Millisecond))
	_, _, err := a.ReadFrom(make([]byte, 10))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read error %v, want a net.Error with Timeout()", err)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Fatalf("timed out after %v, before the deadline", d)
	}
	// A deadline in the past fails at once; clearing it lets reads through.
	a.SetReadDeadline(time.Now().Add(-time.Second))
	if _, _, err := a.ReadFrom(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("past deadline: %v", err)
	}
	a.SetReadDeadline(time.Time{})
	mustWrite(t, a, []byte("self"), a.LocalAddrPort())
	if _, _, err := a.ReadFrom(make([]byte, 10)); err != nil {
		t.Fatalf("after clearing the deadline: %v", err)
	}
}

func TestSetReadDeadlineWakesBlockedReader(t *testing.T) {
	n := realNet(t, 1)
	a, _ := pair(t, n, Link{}, Link{})
	errc := make(chan error, 1)
	go func() {
		_, _, err := a.ReadFromUDPAddrPort(make([]byte, 10))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	a.SetReadDeadline(time.Now())
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("got %v, want a timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocked reader not woken by SetReadDeadline")
	}
}

func TestCloseUnblocksReadersWithErrClosed(t *testing.T) {
	n := realNet(t, 1)
	a, _ := pair(t, n, Link{}, Link{})
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := a.ReadFrom(make([]byte, 10))
			errs <- err
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("reader got %v, want net.ErrClosed", err)
		}
	}
	if _, err := a.WriteToUDPAddrPort([]byte("x"), a.LocalAddrPort()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v, want net.ErrClosed", err)
	}
	if err := a.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
}

func TestNetworkCloseClosesConns(t *testing.T) {
	n := New(Config{Seed: 1})
	a, b := pair(t, n, Link{Latency: time.Second}, Link{})
	mustWrite(t, a, []byte("in flight"), b.LocalAddrPort())
	errc := make(chan error, 1)
	go func() {
		_, _, err := b.ReadFrom(make([]byte, 10))
		errc <- err
	}()
	n.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("reader got %v, want net.ErrClosed", err)
	}
	if _, err := a.WriteToUDPAddrPort([]byte("x"), b.LocalAddrPort()); err == nil {
		t.Fatal("write on a closed network succeeded")
	}
	if n.Pending() != 0 {
		t.Fatal("packets still pending after Close")
	}
}

func TestListenPorts(t *testing.T) {
	n := virtualNet(t, 1)
	h := n.NewHost(ipA, Link{})
	c := listen(t, h, 4000)
	if _, err := h.ListenUDP(4000); !errors.Is(err, ErrPortInUse) {
		t.Fatalf("second listen on 4000: %v, want ErrPortInUse", err)
	}
	e1, e2 := listen(t, h, 0), listen(t, h, 0)
	p1, p2 := e1.LocalAddrPort().Port(), e2.LocalAddrPort().Port()
	if p1 < ephemeralMin || p2 < ephemeralMin || p1 == p2 {
		t.Fatalf("ephemeral ports %d, %d", p1, p2)
	}
	c.Close()
	if _, err := h.ListenUDP(4000); err != nil {
		t.Fatalf("port not free after Close: %v", err)
	}
	ua, ok := e1.LocalAddr().(*net.UDPAddr)
	if !ok || ua.AddrPort() != netip.AddrPortFrom(ipA, p1) {
		t.Fatalf("LocalAddr %v", e1.LocalAddr())
	}
}

func TestReadTruncatesLikeUDP(t *testing.T) {
	n := realNet(t, 1)
	a, b := pair(t, n, Link{}, Link{})
	mustWrite(t, a, []byte("0123456789"), b.LocalAddrPort())
	buf := make([]byte, 4)
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	k, from, err := b.ReadFrom(buf)
	if err != nil || k != 4 || string(buf) != "0123" {
		t.Fatalf("read %d %q %v", k, buf[:k], err)
	}
	if from.(*net.UDPAddr).AddrPort() != a.LocalAddrPort() {
		t.Fatalf("from %v, want %v", from, a.LocalAddrPort())
	}
}

func TestFullReceiveBufferDrops(t *testing.T) {
	n := virtualNet(t, 1)
	a, b := pair(t, n, Link{}, Link{})
	b.SetReadBuffer(5000)
	for range 10 {
		mustWrite(t, a, make([]byte, 1000), b.LocalAddrPort())
	}
	n.RunFor(time.Second)
	buf := make([]byte, 2000)
	read := 0
	for {
		_, _, err := b.ReadFrom(buf)
		if errors.Is(err, ErrWouldBlock) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		read++
	}
	st := n.Stats()
	if read != 5 || st.Dropped(DropRecvBuffer) != 5 || st.Delivered != 5 {
		t.Fatalf("read %d; %v", read, st)
	}
}

func TestNoListenerAndNoRouteAreCounted(t *testing.T) {
	n := virtualNet(t, 1)
	a, b := pair(t, n, Link{}, Link{})
	mustWrite(t, a, []byte("x"), netip.AddrPortFrom(b.LocalAddrPort().Addr(), 9))
	mustWrite(t, a, []byte("x"), netip.MustParseAddrPort("203.0.113.9:1"))
	mustWrite(t, a, []byte("x"), netip.MustParseAddrPort("10.1.2.3:1")) // private: not on the internet
	n.RunFor(time.Second)
	st := n.Stats()
	if st.Dropped(DropNoListener) != 1 || st.Dropped(DropNoRoute) != 2 || st.Delivered != 0 {
		t.Fatalf("%v", st)
	}
}

func TestWriteDeadlineInThePastFails(t *testing.T) {
	n := virtualNet(t, 1)
	a, b := pair(t, n, Link{}, Link{})
	a.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := a.WriteTo([]byte("x"), net.UDPAddrFromAddrPort(b.LocalAddrPort())); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write past deadline: %v", err)
	}
	a.SetWriteDeadline(time.Time{})
	if _, err := a.WriteTo([]byte("x"), net.UDPAddrFromAddrPort(b.LocalAddrPort())); err != nil {
		t.Fatal(err)
	}
}

func TestIPv4MappedDestinationIsUnmapped(t *testing.T) {
	n := virtualNet(t, 1)
	a, b := pair(t, n, Link{}, Link{})
	rb := record(b, n.Clock())
	mapped := netip.AddrPortFrom(netip.AddrFrom16(ipB.As16()), 2000)
	mustWrite(t, a, []byte("x"), mapped)
	n.RunFor(time.Second)
	if rb.len() != 1 {
		t.Fatalf("packet to ::ffff:%s not delivered", ipB)
	}
}

func TestConcurrentWritersAndReaders(t *testing.T) {
	n := realNet(t, 1)
	a, b := pair(t, n, Link{Latency: time.Millisecond}, Link{})
	b.SetReadBuffer(1 << 20)
	const writers, each = 4, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				mustWrite(t, a, numbered(uint32(w*each+i), 64), b.LocalAddrPort())
			}
		}()
	}
	var mu sync.Mutex
	seen := map[uint32]bool{}
	var rg sync.WaitGroup
	for range 2 {
		rg.Add(1)
		go func() {
			defer rg.Done()
			buf := make([]byte, 100)
			for {
				b.SetReadDeadline(time.Now().Add(2 * time.Second))
				k, _, err := b.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				mu.Lock()
				seen[binaryBE(buf[:k])] = true
				done := len(seen) == writers*each
				mu.Unlock()
				if done {
					b.SetReadDeadline(time.Now())
					return
				}
			}
		}()
	}
	wg.Wait()
	rg.Wait()
	if len(seen) != writers*each {
		t.Fatalf("read %d distinct packets, want %d", len(seen), writers*each)
	}
}
