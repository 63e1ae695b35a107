package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// Bare quic-go gets the flow-control windows go-ipv8's QUIC transport uses
// (512 KiB growing to 16 MiB per stream, 768 KiB to 24 MiB per connection)
// and the same 15 s keep-alive, so that idle connections stay open.
var bareQUICConfig = &quic.Config{
	InitialStreamReceiveWindow:     512 << 10,
	MaxStreamReceiveWindow:         16 << 20,
	InitialConnectionReceiveWindow: 768 << 10,
	MaxConnectionReceiveWindow:     24 << 20,
	KeepAlivePeriod:                15 * time.Second,
	MaxIdleTimeout:                 30 * time.Second,
}

// Stream selectors: bare quic-go has no protocol negotiation, so the first
// byte of a stream says what the client wants.
const (
	selectPerf = 'p'
	selectEcho = 'e'
)

// bareTLS holds the certificates of a bare quic-go set-up. Both ends
// authenticate: the client verifies the server's certificate against a
// pinned root and the server requires and verifies the client's, which is
// the work libp2p's and go-ipv8's handshakes do (both ends prove their
// identity).
type bareTLS struct {
	server, client *tls.Config
}

// Files in which saveClient hands the client's credentials to another
// process (the idle-session clients): DER certificates, PKCS #8 key.
const (
	clientCertFile = "client.der"
	clientKeyFile  = "client.key"
	serverCertFile = "server.der"
)

// saveClient writes the client's certificate and key and the server's
// pinned certificate to dir.
func (t bareTLS) saveClient(dir string) error {
	key, err := x509.MarshalPKCS8PrivateKey(t.client.Certificates[0].PrivateKey)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		clientCertFile: t.client.Certificates[0].Certificate[0],
		clientKeyFile:  key,
		serverCertFile: t.server.Certificates[0].Certificate[0],
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// loadClientTLS reads what saveClient wrote and returns the client's TLS
// configuration.
func loadClientTLS(dir string) (*tls.Config, error) {
	var raw [3][]byte
	for i, name := range []string{clientCertFile, clientKeyFile, serverCertFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		raw[i] = b
	}
	key, err := x509.ParsePKCS8PrivateKey(raw[1])
	if err != nil {
		return nil, err
	}
	srv, err := x509.ParseCertificate(raw[2])
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{raw[0]}, PrivateKey: key}},
		RootCAs:      pool,
		ServerName:   srv.DNSNames[0],
		NextProtos:   []string{"bench"},
	}, nil
}

func newBareTLS(tb testing.TB) bareTLS {
	srv, srvPool := selfSignedPinned(tb, "bench-server")
	cli, cliPool := selfSignedPinned(tb, "bench-client")
	return bareTLS{
		server: &tls.Config{
			Certificates: []tls.Certificate{srv},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    cliPool,
			NextProtos:   []string{"bench"},
		},
		client: &tls.Config{
			Certificates: []tls.Certificate{cli},
			RootCAs:      srvPool,
			ServerName:   "bench-server",
			NextProtos:   []string{"bench"},
		},
	}
}

// selfSignedPinned makes an ECDSA P-256 certificate for name and a pool
// that trusts exactly it.
func selfSignedPinned(tb testing.TB, name string) (tls.Certificate, *x509.CertPool) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k, Leaf: leaf}, pool
}

// bareQUICServer is a quic-go listener on its own *net.UDPConn that
// serves perf and echo streams and counts completed connections.
type bareQUICServer struct {
	addr     *net.UDPAddr
	tls      bareTLS
	accepted atomic.Int64
	ln       *quic.Listener
}

func newBareQUICServer(tb testing.TB, keep func(*quic.Conn)) *bareQUICServer {
	s := &bareQUICServer{tls: newBareTLS(tb)}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tr := &quic.Transport{Conn: conn}
	tb.Cleanup(func() { tr.Close(); conn.Close() })
	s.ln, err = tr.Listen(s.tls.server, bareQUICConfig)
	if err != nil {
		tb.Fatal(err)
	}
	s.addr = conn.LocalAddr().(*net.UDPAddr)
	go func() {
		for {
			c, err := s.ln.Accept(context.Background())
			if err != nil {
				return
			}
			// Accept returns once the handshake is complete: the client's
			// certificate has been verified.
			s.accepted.Add(1)
			if keep != nil {
				keep(c)
				continue
			}
			go serveBareConn(c)
		}
	}()
	return s
}

func serveBareConn(c *quic.Conn) {
	for {
		s, err := c.AcceptStream(context.Background())
		if err != nil {
			return
		}
		go func() {
			var sel [1]byte
			if _, err := io.ReadFull(s, sel[:]); err != nil {
				s.CancelRead(1)
				s.CancelWrite(1)
				return
			}
			switch sel[0] {
			case selectPerf:
				if servePerf(s) != nil {
					s.CancelRead(1)
					s.CancelWrite(1)
				}
			case selectEcho:
				io.Copy(s, s)
				s.Close()
			default:
				s.CancelRead(1)
				s.CancelWrite(1)
			}
		}()
	}
}

// bareQUICClient is a fresh quic-go client: its own socket and transport.
type bareQUICClient struct {
	addr *net.UDPAddr
	tls  *tls.Config
	udp  *net.UDPConn
	tr   *quic.Transport
	conn *quic.Conn
}

func newBareQUICClient(addr *net.UDPAddr, tlsConf *tls.Config) (*bareQUICClient, error) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	return &bareQUICClient{addr: addr, tls: tlsConf, udp: udp, tr: &quic.Transport{Conn: udp}}, nil
}

func (c *bareQUICClient) connect(ctx context.Context) error {
	conn, err := c.tr.Dial(ctx, c.addr, c.tls, bareQUICConfig)
	if err != nil {
		return err
	}
	c.conn = conn
	return nil
}

func (c *bareQUICClient) stream(ctx context.Context, sel byte) (*quic.Stream, error) {
	s, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.Write([]byte{sel}); err != nil {
		return nil, err
	}
	return s, nil
}

func (c *bareQUICClient) echo(ctx context.Context) error {
	s, err := c.stream(ctx, selectEcho)
	if err != nil {
		return err
	}
	defer s.Close()
	return echoOnce(s)
}

func (c *bareQUICClient) close() {
	if c.conn != nil {
		c.conn.CloseWithError(0, "")
	}
	c.tr.Close()
	c.udp.Close()
}

// quicHalfCloser gives a quic-go stream the CloseWrite the perf client
// uses: a quic-go stream's Close ends the sending direction only.
type quicHalfCloser struct{ *quic.Stream }

func (s quicHalfCloser) CloseWrite() error { return s.Close() }

// newBareQUICStack is bare quic-go as its documentation shows it: a
// quic.Transport on a *net.UDPConn each side.
func newBareQUICStack(tb testing.TB) *stack {
	srv := newBareQUICServer(tb, nil)
	main, err := newBareQUICClient(srv.addr, srv.tls.client)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(main.close)
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	if err := main.connect(ctx); err != nil {
		tb.Fatalf("%s: %v", stackQUIC, err)
	}
	return &stack{
		name: stackQUIC,
		transfer: func(n uint64) (time.Duration, error) {
			s, err := main.stream(context.Background(), selectPerf)
			if err != nil {
				return 0, err
			}
			d, err := runPerf(quicHalfCloser{s}, n)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", stackQUIC, err)
			}
			return d, nil
		},
		newClient: func() (client, error) { return newBareQUICClient(srv.addr, srv.tls.client) },
		accepted:  &srv.accepted,
	}
}
