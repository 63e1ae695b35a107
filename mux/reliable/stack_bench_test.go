package reliable_test

import (
	"context"
	"io"
	"net/netip"
	"testing"

	"github.com/ipv8/go-ipv8/mux/reliable"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/security/noise"
	"github.com/ipv8/go-ipv8/transport"
	"github.com/ipv8/go-ipv8/transport/udp"
)

// BenchmarkStackThroughputLoopback is one stream through the whole raw-UDP
// stack as the root package wires it — the host's UDP port (batched I/O),
// Noise sessions (encryption) and this mux — on 127.0.0.1. Compare with
// BenchmarkQuicGoThroughputLoopback in the same run.
func BenchmarkStackThroughputLoopback(b *testing.B) {
	type end struct {
		key  *peer.PrivateKey
		port *udp.Port
		tr   *udp.Transport
	}
	mk := func() end {
		key, err := peer.GenerateKey(nil)
		if err != nil {
			b.Fatal(err)
		}
		port, err := udp.Listen(udp.Config{Addr: netip.MustParseAddrPort("127.0.0.1:0")})
		if err != nil {
			b.Fatal(err)
		}
		sec, err := noise.New(key, port, noise.Config{})
		if err != nil {
			b.Fatal(err)
		}
		laddr, _ := transport.FromAddrPort(port.LocalAddr(), "/ipv8")
		tr, err := udp.NewTransport(key, port, sec, reliable.New(reliable.Config{LocalAddr: laddr}), udp.TransportConfig{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { tr.Close(); port.Close() })
		return end{key, port, tr}
	}
	srv, cli := mk(), mk()
	ln, err := srv.tr.Listen()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	const chunk = 1 << 20
	done := make(chan int64)
	go func() {
		c, err := ln.Accept(ctx)
		if err != nil {
			done <- -1
			return
		}
		s, err := c.AcceptStream(ctx)
		if err != nil {
			done <- -1
			return
		}
		n, _ := io.CopyBuffer(io.Discard, s, make([]byte, 256<<10))
		done <- n
	}()
	raddr, _ := transport.FromAddrPort(srv.port.LocalAddr(), "/ipv8")
	c, err := cli.tr.Dial(ctx, raddr, srv.key.ID())
	if err != nil {
		b.Fatal(err)
	}
	s, err := c.OpenStream(ctx, "/bench/1")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, chunk)
	b.SetBytes(chunk)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	s.CloseWrite()
	if n := <-done; n != int64(b.N)*chunk {
		b.Fatalf("received %d of %d bytes", n, int64(b.N)*chunk)
	}
	b.StopTimer()
	st := c.Stats()
	b.ReportMetric(float64(st.PacketsLost), "lost")
	b.ReportMetric(float64(st.BytesSent)/float64(st.PacketsSent), "B/pkt")
	// How much of the traffic the kernel's offloads carried: datagrams per
	// GSO send at the sender, per GRO read at the receiver.
	if o := cli.port.Stats().Offload; o.GSOSends > 0 {
		b.ReportMetric(float64(o.GSOSegments)/float64(o.GSOSends), "pkts/GSO")
	}
	if o := srv.port.Stats().Offload; o.GROReads > 0 {
		b.ReportMetric(float64(o.GROSegments)/float64(o.GROReads), "pkts/GRO")
	}
}
