package reliable

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

func quicTLS() *tls.Config {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := x509.Certificate{SerialNumber: big.NewInt(1), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, NextProtos: []string{"bench"}}
}

// BenchmarkQuicGoThroughputLoopback is the reference point for the mux's
// loopback benchmarks: one quic-go stream (with its TLS encryption, GSO and
// batched reads on its own socket) on the same machine in the same run.
// The full cross-stack comparison (Noise + mux against quic-go and
// go-libp2p) lives in the bench/ module.
func BenchmarkQuicGoThroughputLoopback(b *testing.B) {
	ln, err := quic.ListenAddr("127.0.0.1:0", quicTLS(), &quic.Config{MaxStreamReceiveWindow: 64 << 20, MaxConnectionReceiveWindow: 96 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	const chunk = 1 << 20
	done := make(chan int64)
	go func() {
		c, err := ln.Accept(context.Background())
		if err != nil {
			done <- -1
			return
		}
		s, err := c.AcceptStream(context.Background())
		if err != nil {
			done <- -1
			return
		}
		n, _ := io.CopyBuffer(io.Discard, s, make([]byte, 256<<10))
		done <- n
	}()
	c, err := quic.DialAddr(context.Background(), ln.Addr().(*net.UDPAddr).String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"bench"}}, &quic.Config{})
	if err != nil {
		b.Fatal(err)
	}
	s, err := c.OpenStreamSync(context.Background())
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
	s.Close()
	if n := <-done; n != int64(b.N)*chunk {
		b.Fatalf("received %d of %d bytes", n, int64(b.N)*chunk)
	}
}
