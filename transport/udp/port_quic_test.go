package udp

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/ipv8/go-ipv8/transport"
)

const quicALPN = "go-ipv8-port-test"

// selfSignedTLS returns a server and a client TLS config for tests.
func selfSignedTLS(t testing.TB) (server, client *tls.Config) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}},
		NextProtos:   []string{quicALPN},
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client = &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{quicALPN}}
	return server, client
}

// quicPair is a quic-go server and client, each on the QUICConn of a port.
type quicPair struct {
	server, client *quic.Transport
	ln             *quic.Listener
	conn           *quic.Conn // the client's
	serverConn     *quic.Conn
}

func newQUICPair(t testing.TB, srv, cli net.PacketConn, srvAddr netip.AddrPort) *quicPair {
	t.Helper()
	stls, ctls := selfSignedTLS(t)
	q := &quicPair{server: &quic.Transport{Conn: srv}, client: &quic.Transport{Conn: cli}}
	ln, err := q.server.Listen(stls, &quic.Config{MaxIdleTimeout: waitFor})
	if err != nil {
		t.Fatal(err)
	}
	q.ln = ln
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	accepted := make(chan *quic.Conn, 1)
	go func() {
		c, err := ln.Accept(ctx)
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	q.conn, err = q.client.Dial(ctx, net.UDPAddrFromAddrPort(srvAddr), ctls, &quic.Config{MaxIdleTimeout: waitFor})
	if err != nil {
		t.Fatalf("QUIC handshake over the port: %v", err)
	}
	q.serverConn = <-accepted
	if q.serverConn == nil {
		t.FailNow()
	}
	t.Cleanup(q.close)
	return q
}

func (q *quicPair) close() {
	q.conn.CloseWithError(0, "")
	q.ln.Close()
	q.client.Close()
	q.server.Close()
}

// TestQUICEchoWhileOtherTrafficFlows runs a real quic-go handshake and a
// 1 MiB stream echo over two ports' QUICConn while STUN, community and
// own-type packets flow to the same port, from other sockets and from the
// QUIC client's own port: the echo is byte-exact and every other packet
// reaches its handler.
func TestQUICEchoWhileOtherTrafficFlows(t *testing.T) {
	for _, kind := range portKinds() {
		t.Run(kind.name, func(t *testing.T) {
			srv := kind.open(t, loopback4)
			cli := kind.open(t, loopback4)
			var stun, own atomic.Int64
			var wrongSource atomic.Int64
			srv.HandleSTUN(func(pkt []byte, from netip.AddrPort) { stun.Add(1) })
			srv.HandleType(transport.TypeNoiseData, func(pkt []byte, from netip.AddrPort) {
				own.Add(1)
				if pkt[1] == 'C' && from != cli.LocalAddr() {
					wrongSource.Add(1)
				}
			})

			q := newQUICPair(t, srv.QUICConn(), cli.QUICConn(), srv.LocalAddr())
			go func() { // the server echoes one stream
				s, err := q.serverConn.AcceptStream(context.Background())
				if err != nil {
					return
				}
				io.Copy(s, s)
				s.Close()
			}()

			// Background traffic: a stranger sends STUN and own-type packets,
			// and the QUIC client's port sends own-type packets to the same
			// server port.
			const rounds = 400
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := newSender(t)
				for i := range rounds {
					s.WriteToUDPAddrPort(stunPacket(byte(i)), srv.LocalAddr())
					s.WriteToUDPAddrPort([]byte{transport.TypeNoiseData, 'S'}, srv.LocalAddr())
					if err := cli.WriteTo([]byte{transport.TypeNoiseData, 'C'}, srv.LocalAddr()); err != nil {
						t.Error(err)
						return
					}
					if i%20 == 0 {
						time.Sleep(time.Millisecond)
					}
				}
			}()

			data := make([]byte, 1<<20)
			rand.Read(data)
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			str, err := q.conn.OpenStreamSync(ctx)
			if err != nil {
				t.Fatal(err)
			}
			str.SetDeadline(time.Now().Add(waitFor))
			go func() {
				str.Write(data)
				str.Close()
			}()
			back, err := io.ReadAll(str)
			if err != nil {
				t.Fatalf("echo: %v", err)
			}
			if !bytes.Equal(back, data) {
				t.Fatalf("echo returned %d bytes, not the 1 MiB sent", len(back))
			}
			wg.Wait()
			eventually(t, "all background packets at their handlers", func() bool {
				return stun.Load() == rounds && own.Load() == 2*rounds
			})
			if n := wrongSource.Load(); n != 0 {
				t.Errorf("%d packets from the QUIC client's port came from another source", n)
			}
			s := srv.Stats()
			if s.Drops.Misrouted != 0 || s.Drops.QUICQueueFull != 0 || s.Drops.Invalid != 0 {
				t.Errorf("server drops: %+v", s.Drops)
			}
			if srv.Steered() != (s.In[ClassQUIC].Packets == 0) {
				t.Errorf("steered=%v but the port's socket read %d QUIC packets", srv.Steered(), s.In[ClassQUIC].Packets)
			}
		})
	}
}
