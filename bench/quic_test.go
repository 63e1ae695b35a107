package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	ipv8 "github.com/ipv8/go-ipv8"
	"github.com/ipv8/go-ipv8/host"
	"github.com/ipv8/go-ipv8/protocols/perf"
)

// transferSize is what one measurement moves over one stream.
const transferSize = 64 << 20

// BenchmarkQUICOneStream moves transferSize bytes over one stream with
// bare quic-go on its own *net.UDPConn, with go-ipv8's QUIC transport on
// the shared port with kernel steering, and with the user-space demux,
// interleaving the three in every iteration so that machine noise hits
// them alike. It reports each in MB/s and go-ipv8's ratios to bare quic-go
// (the target for steered is ≥ 0.95).
func BenchmarkQUICOneStream(b *testing.B) {
	bare := newBareQUICPair(b)
	steered := newHostPair(b)
	demux := newHostPair(b, ipv8.DisableSteering())
	var tBare, tSteered, tDemux time.Duration
	b.ResetTimer()
	for range b.N {
		tBare += bare.transfer(b, transferSize)
		tSteered += hostTransfer(b, steered, transferSize)
		tDemux += hostTransfer(b, demux, transferSize)
	}
	b.StopTimer()
	mb := func(d time.Duration) float64 { return float64(b.N) * transferSize / d.Seconds() / 1e6 }
	b.ReportMetric(mb(tBare), "bare-MB/s")
	b.ReportMetric(mb(tSteered), "steered-MB/s")
	b.ReportMetric(mb(tDemux), "demux-MB/s")
	b.ReportMetric(mb(tSteered)/mb(tBare), "steered/bare")
	b.ReportMetric(mb(tDemux)/mb(tBare), "demux/bare")
	b.ReportMetric(0, "ns/op")
}

type hostPair struct{ client, server *host.Host }

func newHostPair(b *testing.B, opts ...ipv8.Option) hostPair {
	mk := func() *host.Host {
		// Only QUIC: the default prefers the raw-UDP transport.
		h, err := ipv8.New(append([]ipv8.Option{ipv8.ListenAddrs("/ip4/127.0.0.1/udp/0"), ipv8.Transports(ipv8.QUIC)}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { h.Close() })
		return h
	}
	p := hostPair{client: mk(), server: mk()}
	perf.Register(p.server)
	if err := p.client.Connect(context.Background(), p.server.AddrInfo()); err != nil {
		b.Fatal(err)
	}
	return p
}

// hostTransfer uploads n bytes with the perf protocol and returns the time
// until the server had read them all (it answers with an empty download).
func hostTransfer(b *testing.B, p hostPair, n uint64) time.Duration {
	s, err := p.client.NewStream(context.Background(), p.server.ID(), perf.ID)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	res, err := perf.RunOn(s, n, 0)
	if err != nil {
		b.Fatal(err)
	}
	return res.Upload + res.Download
}

type bareQUICPair struct {
	conn     *quic.Conn
	accepted chan struct{}
}

// newBareQUICPair runs quic-go as its own documentation shows: a
// quic.Transport on a *net.UDPConn each side, TLS with a self-signed
// certificate, default quic.Config with the same windows go-ipv8 uses.
func newBareQUICPair(b *testing.B) *bareQUICPair {
	cert := selfSigned(b)
	qconf := &quic.Config{
		InitialStreamReceiveWindow:     512 << 10,
		MaxStreamReceiveWindow:         16 << 20,
		InitialConnectionReceiveWindow: 768 << 10,
		MaxConnectionReceiveWindow:     24 << 20,
	}
	sconn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	cconn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	st, ct := &quic.Transport{Conn: sconn}, &quic.Transport{Conn: cconn}
	b.Cleanup(func() { st.Close(); ct.Close(); sconn.Close(); cconn.Close() })
	ln, err := st.Listen(&tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"bench"}}, qconf)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				for {
					s, err := c.AcceptStream(context.Background())
					if err != nil {
						return
					}
					go func() {
						io.Copy(io.Discard, s)
						s.Close()
					}()
				}
			}()
		}
	}()
	c, err := ct.Dial(context.Background(), sconn.LocalAddr(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"bench"}}, qconf)
	if err != nil {
		b.Fatal(err)
	}
	return &bareQUICPair{conn: c}
}

var zeros = make([]byte, 64<<10)

func (p *bareQUICPair) transfer(b *testing.B, n uint64) time.Duration {
	start := time.Now()
	s, err := p.conn.OpenStreamSync(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for left := n; left > 0; {
		k := min(left, uint64(len(zeros)))
		if _, err := s.Write(zeros[:k]); err != nil {
			b.Fatal(err)
		}
		left -= k
	}
	s.Close()
	if _, err := io.Copy(io.Discard, s); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func selfSigned(b *testing.B) tls.Certificate {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		b.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}
