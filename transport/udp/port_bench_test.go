package udp

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/transport"
)

// benchConns opens the server and client QUIC sockets of one benchmark
// setup: the port with kernel steering, a bare *net.UDPConn (quic-go alone),
// or the port with the user-space demux.
func benchConns(b *testing.B, setup string) (srv, cli net.PacketConn, srvAddr netip.AddrPort) {
	b.Helper()
	switch setup {
	case "bare":
		s, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(loopback4))
		if err != nil {
			b.Fatal(err)
		}
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(loopback4))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close(); c.Close() })
		return s, c, s.LocalAddr().(*net.UDPAddr).AddrPort()
	case "steered", "demux":
		open := func() *Port {
			p, err := Listen(Config{Addr: loopback4, DisableSteering: setup == "demux"})
			if err != nil {
				b.Fatal(err)
			}
			if p.Steered() != (setup == "steered") {
				b.Fatalf("%s: Steered() = %v", setup, p.Steered())
			}
			b.Cleanup(func() { p.Close() })
			return p
		}
		s, c := open(), open()
		return s.QUICConn(), c.QUICConn(), s.LocalAddr()
	}
	b.Fatalf("unknown setup %q", setup)
	return nil, nil, netip.AddrPort{}
}

// BenchmarkQUICThroughput is quic-go's one-stream throughput over the
// port's QUICConn with kernel steering, over a bare *net.UDPConn, and over
// the user-space demux (MB/s in the output).
//
//	go test -run XXX -bench QUICThroughput -benchtime 2000x ./transport/udp/
func BenchmarkQUICThroughput(b *testing.B) {
	for _, setup := range []string{"steered", "bare", "demux"} {
		b.Run(setup, func(b *testing.B) {
			srv, cli, addr := benchConns(b, setup)
			q := newQUICPair(b, srv, cli, addr)
			done := make(chan int64, 1)
			go func() {
				s, err := q.serverConn.AcceptStream(context.Background())
				if err != nil {
					done <- -1
					return
				}
				n, _ := io.Copy(io.Discard, s)
				done <- n
			}()
			str, err := q.conn.OpenStreamSync(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			chunk := make([]byte, 64<<10)
			b.SetBytes(int64(len(chunk)))
			b.ResetTimer()
			for range b.N {
				if _, err := str.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			str.Close()
			if n := <-done; n != int64(b.N*len(chunk)) {
				b.Fatalf("server read %d bytes, want %d", n, b.N*len(chunk))
			}
			b.StopTimer()
		})
	}
}

// blast sends n own-type packets to dst from a sender port in batches of 32
// (sendmmsg) and returns how long the sending took.
func blast(b *testing.B, sender *Port, dst netip.AddrPort, n int) time.Duration {
	msgs := make([]Message, 32)
	pkt := make([]byte, 100)
	pkt[0] = transport.TypeNoiseData
	for i := range msgs {
		msgs[i] = Message{pkt, dst}
	}
	start := time.Now()
	for sent := 0; sent < n; {
		k := min(len(msgs), n-sent)
		w, err := sender.WriteBatch(msgs[:k])
		if err != nil {
			// ENOBUFS and the like under overload: the kernel dropped them.
			time.Sleep(10 * time.Microsecond)
		}
		sent += max(w, 1)
	}
	return time.Since(start)
}

// settle waits until count stops growing, so late packets are counted.
func settle(count *atomic.Int64, want int64) {
	last, stable := count.Load(), 0
	for stable < 10 && last < want {
		time.Sleep(5 * time.Millisecond)
		if n := count.Load(); n == last {
			stable++
		} else {
			last, stable = n, 0
		}
	}
}

// BenchmarkNonQUICDelivery is how many non-QUIC packets per second a
// handler receives when a sender blasts them at the port, and the share of
// those sent that arrived (loopback; the socket buffer absorbs bursts).
//
//	go test -run XXX -bench NonQUICDelivery -benchtime 300000x ./transport/udp/
func BenchmarkNonQUICDelivery(b *testing.B) {
	for _, setup := range []string{"steered", "demux"} {
		b.Run(setup, func(b *testing.B) {
			p, err := Listen(Config{Addr: loopback4, DisableSteering: setup == "demux"})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			sender, err := Listen(Config{Addr: loopback4, DisableSteering: true})
			if err != nil {
				b.Fatal(err)
			}
			defer sender.Close()
			var got atomic.Int64
			p.HandleType(transport.TypeNoiseData, func([]byte, netip.AddrPort) { got.Add(1) })
			b.ResetTimer()
			d := blast(b, sender, p.LocalAddr(), b.N)
			settle(&got, int64(b.N))
			b.StopTimer()
			b.ReportMetric(float64(got.Load())/d.Seconds(), "delivered/s")
			b.ReportMetric(100*float64(got.Load())/float64(b.N), "%delivered")
		})
	}
}

// BenchmarkNonQUICDeliveryDuringQUIC is the same while a quic-go bulk
// transfer runs on the same port: the share of non-QUIC packets delivered
// (quic-go's own ReadNonQUICPacket delivered 39 % on this machine).
//
//	go test -run XXX -bench NonQUICDeliveryDuringQUIC -benchtime 300000x ./transport/udp/
func BenchmarkNonQUICDeliveryDuringQUIC(b *testing.B) {
	for _, setup := range []string{"steered", "demux"} {
		b.Run(setup, func(b *testing.B) {
			p, err := Listen(Config{Addr: loopback4, DisableSteering: setup == "demux"})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			cli, err := Listen(Config{Addr: loopback4, DisableSteering: setup == "demux"})
			if err != nil {
				b.Fatal(err)
			}
			defer cli.Close()
			sender, err := Listen(Config{Addr: loopback4, DisableSteering: true})
			if err != nil {
				b.Fatal(err)
			}
			defer sender.Close()
			var got atomic.Int64
			p.HandleType(transport.TypeNoiseData, func([]byte, netip.AddrPort) { got.Add(1) })

			q := newQUICPair(b, p.QUICConn(), cli.QUICConn(), p.LocalAddr())
			var quicBytes atomic.Int64
			go func() {
				s, err := q.serverConn.AcceptStream(context.Background())
				if err != nil {
					return
				}
				buf := make([]byte, 64<<10)
				for {
					n, err := s.Read(buf)
					quicBytes.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
			str, err := q.conn.OpenStreamSync(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			stop := make(chan struct{})
			writerDone := make(chan struct{})
			go func() {
				defer close(writerDone)
				chunk := make([]byte, 64<<10)
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := str.Write(chunk); err != nil {
						return
					}
				}
			}()
			time.Sleep(100 * time.Millisecond) // let the transfer ramp up

			b.ResetTimer()
			q0 := quicBytes.Load()
			d := blast(b, sender, p.LocalAddr(), b.N)
			settle(&got, int64(b.N))
			b.StopTimer()
			q1 := quicBytes.Load()
			close(stop)
			str.CancelWrite(0)
			<-writerDone
			b.ReportMetric(float64(got.Load())/d.Seconds(), "delivered/s")
			b.ReportMetric(100*float64(got.Load())/float64(b.N), "%delivered")
			b.ReportMetric(float64(q1-q0)/d.Seconds()/1e6, "quicMB/s")
		})
	}
}
