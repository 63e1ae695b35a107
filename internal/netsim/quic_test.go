package netsim

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

func selfSignedTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "netsim"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"netsim"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		NextProtos:   []string{"netsim-test"},
	}
}

// quic-go runs its whole handshake and a stream echo with netsim Conns as
// its sockets, over links that lose, reorder and duplicate packets.
func TestQUICEchoOverLossyNetsim(t *testing.T) {
	t.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	n := realNet(t, 11)
	lossy := Link{Latency: 5 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 0.05,
		Reorder: 0.02, ReorderDelay: 5 * time.Millisecond, Duplicate: 0.01, Bandwidth: 5_000_000}
	nat := n.NewNAT(netip.MustParseAddr("198.51.100.7"), NATConfig{}, lossy)
	cc := listen(t, nat.NewHost(netip.MustParseAddr("10.0.0.2"), Link{}), 0)
	sc := listen(t, n.NewHost(ipB, lossy), 4433)

	serverTLS := selfSignedTLS(t)
	pool := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(serverTLS.Certificates[0].Certificate[0])
	pool.AddCert(leaf)
	clientTLS := &tls.Config{RootCAs: pool, ServerName: "netsim", NextProtos: []string{"netsim-test"}}

	st := &quic.Transport{Conn: sc}
	defer st.Close()
	ln, err := st.Listen(serverTLS, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	serverErr := make(chan error, 1)
	go func() {
		conn, err := ln.Accept(ctx)
		if err != nil {
			serverErr <- err
			return
		}
		s, err := conn.AcceptStream(ctx)
		if err != nil {
			serverErr <- err
			return
		}
		_, err = io.Copy(s, s)
		s.Close()
		serverErr <- err
	}()

	ct := &quic.Transport{Conn: cc}
	defer ct.Close()
	conn, err := ct.Dial(ctx, net.UDPAddrFromAddrPort(sc.LocalAddrPort()), clientTLS, &quic.Config{})
	if err != nil {
		t.Fatalf("handshake over netsim: %v", err)
	}
	defer conn.CloseWithError(0, "")
	if got := conn.RemoteAddr().(*net.UDPAddr).AddrPort(); got != sc.LocalAddrPort() {
		t.Fatalf("remote %v", got)
	}
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 300_000)
	rand.Read(msg)
	go func() {
		s.Write(msg)
		s.Close()
	}()
	echo, err := io.ReadAll(s)
	if err != nil {
		t.Fatalf("reading echo: %v", err)
	}
	if !bytes.Equal(echo, msg) {
		t.Fatalf("echo differs: %d bytes back of %d", len(echo), len(msg))
	}
	if err := <-serverErr; err != nil {
		t.Fatalf("server: %v", err)
	}
	stats := n.Stats()
	if stats.Dropped(DropLoss) == 0 || stats.Reordered == 0 {
		t.Fatalf("the link was not lossy: %v", stats)
	}
	t.Logf("netsim: %v", stats)
}
