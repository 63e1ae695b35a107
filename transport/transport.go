// Package transport defines what every go-ipv8 transport provides: a
// Transport dials and listens, a Conn is a secured and multiplexed
// connection to one authenticated peer, and a Stream is a reliable,
// ordered byte stream inside a Conn. Implementations live in subpackages
// (transport/quic, transport/udp); the root ipv8 package and host wire them.
//
// PacketConn is the small packet interface that the host's one UDP port is
// written against, so that internal/netsim can stand in for kernel sockets.
package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocol"
)

// Transport dials and accepts Conns over one kind of address. A transport is
// bound to the host's port when it is built, so Listen takes no address.
type Transport interface {
	// Dial opens a Conn to p at raddr. The remote must prove that it holds
	// p's key, or Dial fails with an error wrapping ErrWrongPeer.
	Dial(ctx context.Context, raddr ma.Multiaddr, p peer.ID) (Conn, error)
	// CanDial reports whether raddr (without /p2p/) is an address of this transport.
	CanDial(raddr ma.Multiaddr) bool
	// Listen starts accepting inbound Conns.
	Listen() (Listener, error)
	// Name is a short name for logs and the CLI ("quic", "udp").
	Name() string
	// Close closes every Conn and Listener of the transport.
	Close() error
}

// Listener accepts inbound Conns.
type Listener interface {
	// Accept waits for the next inbound Conn; the remote is authenticated.
	Accept(ctx context.Context) (Conn, error)
	// Multiaddr is the address the listener is bound to (it may hold an
	// unspecified IP such as 0.0.0.0).
	Multiaddr() ma.Multiaddr
	Close() error
}

// Conn is a secured, multiplexed connection to one authenticated peer.
type Conn interface {
	LocalPeer() peer.ID
	RemotePeer() peer.ID
	// RemotePublicKey is the key the remote proved it holds (for a native
	// peer, the same as RemotePeer().PublicKey()).
	RemotePublicKey() *peer.PublicKey
	LocalMultiaddr() ma.Multiaddr
	RemoteMultiaddr() ma.Multiaddr

	// OpenStream opens a stream for protocol p. The protocol ID travels in
	// the stream's opening together with the first data: no round trip. If
	// the remote does not serve p, the stream's next Read or Write fails with
	// an error wrapping ErrProtocolNotSupported.
	OpenStream(ctx context.Context, p protocol.ID) (Stream, error)
	// AcceptStream waits for the next stream the remote opened.
	AcceptStream(ctx context.Context) (Stream, error)

	// SendDatagram sends an unreliable message (at most MaxDatagramSize()).
	SendDatagram(b []byte) error
	// ReceiveDatagram waits for the next unreliable message.
	ReceiveDatagram(ctx context.Context) ([]byte, error)
	// MaxDatagramSize is the largest payload SendDatagram takes now.
	MaxDatagramSize() int

	// Stats reports what the connection has measured of its path.
	Stats() Stats
	// Transport names the transport the Conn runs on ("quic", "udp").
	Transport() string

	// Close closes the connection gracefully with code 0.
	Close() error
	// CloseWithError closes the connection, telling the remote why.
	CloseWithError(code ErrorCode, reason string) error
	// Done is closed when the connection has ended, for any reason.
	Done() <-chan struct{}
}

// Stream is a reliable, ordered, bidirectional byte stream. It is a
// net.Conn, so it can be handed to bufio, encoding/json, io.Copy or
// http.Serve (through a listener adapter) without glue code.
type Stream interface {
	net.Conn
	// CloseWrite half-closes: the remote reads io.EOF after the data sent.
	CloseWrite() error
	// CloseRead tells the remote that no more data will be read.
	CloseRead() error
	// Reset aborts both directions; the remote's Read and Write fail with a
	// *StreamError carrying code.
	Reset(code ErrorCode) error
	// Protocol is the protocol the stream was opened for.
	Protocol() protocol.ID
	// Conn is the connection the stream belongs to.
	Conn() Conn
}

// ErrorCode is an application error code carried by stream resets and
// connection closes.
type ErrorCode uint32

// Codes used by go-ipv8 itself. Applications use codes from 0x100 up.
const (
	CodeNoError              ErrorCode = 0x0
	CodeProtocolNotSupported ErrorCode = 0x1 // no handler for the stream's protocol
	CodeInternal             ErrorCode = 0x2
	CodeResourceLimit        ErrorCode = 0x3 // a resource manager limit was hit
	CodeCancelled            ErrorCode = 0x4 // the opener gave up (context cancelled)
	CodeConnClosing          ErrorCode = 0x5 // the connection closes
	CodeDuplicateConn        ErrorCode = 0x6 // a simultaneous dial collapsed into the other Conn
)

// Errors a caller may branch on with errors.Is.
var (
	ErrWrongPeer            = errors.New("transport: remote peer is not the peer dialled")
	ErrProtocolNotSupported = errors.New("transport: protocol not supported by remote")
	ErrStreamReset          = errors.New("transport: stream reset")
	ErrConnClosed           = errors.New("transport: connection closed")
	ErrTransportClosed      = errors.New("transport: transport closed")
	ErrDatagramTooLarge     = errors.New("transport: datagram too large")
	ErrDatagramsDisabled    = errors.New("transport: peer does not accept datagrams")
	ErrAddrNotSupported     = errors.New("transport: address not supported by this transport")
	ErrHandshakeTimeout     = errors.New("transport: handshake timed out")
)

// StreamError is returned by a Stream's Read or Write after a reset. It
// matches ErrStreamReset, and ErrProtocolNotSupported when the code is
// CodeProtocolNotSupported.
type StreamError struct {
	Code     ErrorCode
	Remote   bool        // the remote reset the stream
	Protocol protocol.ID // the stream's protocol, when known
}

func (e *StreamError) Error() string {
	who := "locally"
	if e.Remote {
		who = "by remote"
	}
	if e.Code == CodeProtocolNotSupported {
		return fmt.Sprintf("transport: protocol %q not supported by remote", e.Protocol)
	}
	return fmt.Sprintf("transport: stream (%s) reset %s with code %#x", e.Protocol, who, uint32(e.Code))
}

// Is makes StreamError match ErrStreamReset and, for code
// CodeProtocolNotSupported, ErrProtocolNotSupported.
func (e *StreamError) Is(target error) bool {
	return target == ErrStreamReset || (target == ErrProtocolNotSupported && e.Code == CodeProtocolNotSupported)
}

// ConnError is returned by a Conn's methods after the connection closed
// with an error code.
type ConnError struct {
	Code   ErrorCode
	Reason string
	Remote bool
	// Err is the local cause, when there is one (a failed handshake's
	// error, so that errors.Is(err, ErrWrongPeer) works).
	Err error
}

func (e *ConnError) Error() string {
	who := "locally"
	if e.Remote {
		who = "by remote"
	}
	return fmt.Sprintf("transport: connection closed %s (code %#x): %s", who, uint32(e.Code), e.Reason)
}

// Is makes ConnError match ErrConnClosed.
func (e *ConnError) Is(target error) bool { return target == ErrConnClosed }

// Unwrap returns the local cause.
func (e *ConnError) Unwrap() error { return e.Err }

// PathKind tells whether a Conn's packets travel straight to the peer or
// through a relay.
type PathKind uint8

const (
	PathDirect PathKind = iota
	PathRelayed
)

func (k PathKind) String() string {
	if k == PathRelayed {
		return "relayed"
	}
	return "direct"
}

// Stats is what a Conn has measured of its path: the RTT and bandwidth that
// a kernel's TCP state hides, handed to the application.
type Stats struct {
	SmoothedRTT time.Duration
	MinRTT      time.Duration
	LatestRTT   time.Duration
	RTTVar      time.Duration
	// CongestionWindow and BytesInFlight in bytes (0 when not known).
	CongestionWindow uint64
	BytesInFlight    uint64
	// Bandwidth is the delivery-rate estimate in bytes per second (0 when
	// not known).
	Bandwidth uint64

	BytesSent       uint64
	BytesReceived   uint64
	PacketsSent     uint64
	PacketsReceived uint64
	PacketsLost     uint64
	BytesLost       uint64
	Retransmissions uint64

	Path PathKind
	// Opened is when the connection was established.
	Opened time.Time
}

// LossRate is PacketsLost/PacketsSent (0 when nothing was sent).
func (s Stats) LossRate() float64 {
	if s.PacketsSent == 0 {
		return 0
	}
	return float64(s.PacketsLost) / float64(s.PacketsSent)
}

// PacketConn is the packet socket the host's UDP port runs on: a
// *net.UDPConn satisfies it, and so does a host of internal/netsim.
type PacketConn interface {
	net.PacketConn
	ReadFromUDPAddrPort(b []byte) (n int, addr netip.AddrPort, err error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

var _ PacketConn = (*net.UDPConn)(nil)

// CallbackConn is implemented by Conns that can hand inbound streams and
// datagrams to callbacks, so that the Conn's owner (the Host) needs no
// goroutine per Conn blocked in AcceptStream and ReceiveDatagram: an idle
// connection then costs memory only. After SetCallbacks, AcceptStream and
// ReceiveDatagram are not used.
type CallbackConn interface {
	// SetCallbacks installs onStream, called for each stream the remote
	// opens (it must not block: it starts the stream's handler on a
	// goroutine), onDatagram, called for each datagram received (it must
	// not block; it may keep b), and onClose, called once when the Conn has
	// ended. Streams and datagrams that arrived before the call are
	// delivered to the callbacks.
	SetCallbacks(onStream func(Stream), onDatagram func(b []byte), onClose func())
}

// EarlyDialer is implemented by transports that can return a Conn before
// the remote has proved its identity, so that the first streams' data
// rides in the handshake's first flight (0-RTT) and a request's reply can
// come back within one round trip. If the handshake then fails, the Conn
// closes with a *ConnError saying why. 0-RTT data may be replayed to the
// peer: open streams early only for requests that are safe to receive twice.
type EarlyDialer interface {
	DialEarly(ctx context.Context, raddr ma.Multiaddr, p peer.ID) (Conn, error)
}
