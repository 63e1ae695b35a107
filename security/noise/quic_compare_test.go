//go:build quiccompare

package noise

// The reference figure for the handshake target (≥ 5× quic-go's
// handshakes per second): quic-go's full handshake, client and server in
// one process on loopback, both authenticated with Ed25519 certificates as
// libp2p's TLS does. Built only with -tags quiccompare, so that the
// package's tests do not compile quic-go:
//
//	go test -tags quiccompare -run XXX -bench 'Handshake' -cpu 1 ./security/noise

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

func BenchmarkHandshakeQUICGo(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"x"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		b.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
	stls := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"x"}, ClientAuth: tls.RequireAnyClientCert}
	ctls := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"x"}, Certificates: []tls.Certificate{cert}}
	ln, err := quic.ListenAddr("127.0.0.1:0", stls, &quic.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			go func() { <-c.HandshakeComplete(); c.CloseWithError(0, "") }()
		}
	}()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	tr := &quic.Transport{Conn: pc}
	defer tr.Close()
	b.ReportAllocs()
	start, cpu0 := time.Now(), processCPU()
	k := 0
	for b.Loop() {
		c, err := tr.Dial(context.Background(), ln.Addr(), ctls, &quic.Config{})
		if err != nil {
			b.Fatal(err)
		}
		c.CloseWithError(0, "")
		k++
	}
	b.ReportMetric(float64(k)/time.Since(start).Seconds(), "handshakes/s")
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(k)/cpu.Seconds(), "handshakes/cpu-s")
	}
}
