package quic

import (
	"context"
	"io"
	"testing"

	"github.com/ipv8/go-ipv8/transport"
)

// BenchmarkStreamThroughput moves data one way over one stream between two
// transports on loopback *net.UDPConns (quic-go's GSO and batched I/O path)
// and reports MB/s. The raw-quic-go case runs a bare quic-go stream of the
// same connection, to show what this package's wrapping costs.
func BenchmarkStreamThroughput(b *testing.B) {
	b.Run("transport", func(b *testing.B) {
		benchThroughput(b, func(ca, cb transport.Conn) (io.WriteCloser, func() (io.ReadWriteCloser, error)) {
			s, err := ca.OpenStream(context.Background(), "/bench/throughput/1")
			if err != nil {
				b.Fatal(err)
			}
			return s, func() (io.ReadWriteCloser, error) { return cb.AcceptStream(context.Background()) }
		})
	})
	b.Run("raw-quic-go", func(b *testing.B) {
		benchThroughput(b, func(ca, cb transport.Conn) (io.WriteCloser, func() (io.ReadWriteCloser, error)) {
			s, err := ca.(*conn).qc.OpenStreamSync(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			return s, func() (io.ReadWriteCloser, error) { return cb.(*conn).qc.AcceptStream(context.Background()) }
		})
	})
}

func benchThroughput(b *testing.B, open func(ca, cb transport.Conn) (io.WriteCloser, func() (io.ReadWriteCloser, error))) {
	a, srv := newNode(b, Config{}), listeningNode(b, Config{})
	ca, cb := connect(b, a, srv)
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	w, accept := open(ca, cb)
	done := make(chan int64, 1)
	go func() {
		s, err := accept()
		if err != nil {
			done <- -1
			return
		}
		n, _ := io.Copy(io.Discard, s)
		s.Write([]byte{1}) // tell the sender everything arrived
		s.Close()
		done <- n
	}()
	b.SetBytes(chunk)
	b.ResetTimer()
	for range b.N {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	// FIN: a transport.Stream's CloseWrite, a quic-go stream's Close.
	if cw, ok := w.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		w.Close()
	}
	if _, err := io.ReadFull(w.(io.Reader), make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if n := <-done; n != int64(b.N)*chunk {
		b.Fatalf("received %d bytes, sent %d", n, int64(b.N)*chunk)
	}
}

// BenchmarkConnectAndFirstStream measures a whole first exchange: dial
// (QUIC + libp2p TLS handshake with both certificate checks), open a stream,
// send one byte and read the one-byte reply. It reports µs per exchange.
func BenchmarkConnectAndFirstStream(b *testing.B) {
	a, srv := newNode(b, Config{}), listeningNode(b, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			c, err := srv.ln.Accept(ctx)
			if err != nil {
				return
			}
			go func(c transport.Conn) {
				s, err := c.AcceptStream(ctx)
				if err != nil {
					return
				}
				var one [1]byte
				if _, err := io.ReadFull(s, one[:]); err == nil {
					s.Write(one[:])
				}
				s.Close()
			}(c)
		}
	}()
	var one [1]byte
	b.ResetTimer()
	for range b.N {
		c, err := a.tr.Dial(ctx, srv.ln.Multiaddr(), srv.id())
		if err != nil {
			b.Fatal(err)
		}
		s, err := c.OpenStream(ctx, "/bench/rtt/1")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Write([]byte{7}); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(s, one[:]); err != nil || one[0] != 7 {
			b.Fatalf("reply %v, %v", one, err)
		}
		b.StopTimer()
		c.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/connect+rtt")
}
