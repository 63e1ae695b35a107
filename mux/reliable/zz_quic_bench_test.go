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

func zzTLS() *tls.Config {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := x509.Certificate{SerialNumber: big.NewInt(1), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, NextProtos: []string{"bench"}}
}

func BenchmarkZZQuicGoThroughputLoopback(b *testing.B) {
	ln, err := quic.ListenAddr("127.0.0.1:0", zzTLS(), &quic.Config{MaxStreamReceiveWindow: 64 << 20, MaxConnectionReceiveWindow: 96 << 20})
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
	s, _ := c.OpenStreamSync(context.Background())
	buf := make([]byte, chunk)
	b.SetBytes(chunk)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Write(buf)
	}
	s.Close()
	<-done
}
