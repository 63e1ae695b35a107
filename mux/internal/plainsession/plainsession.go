// Package plainsession is a test stand-in for security/noise: a
// security.Session without encryption over any transport.PacketConn, so
// that the mux can be tested and benchmarked on its own (on loopback UDP
// or internal/netsim). A session is named by a 64-bit ID chosen by the
// dialler, not by an address: a packet from a new address moves the
// session there, as a Noise session does when its peer roams.
//
// Wire: [type][session ID, 8 bytes][payload]. The dialler sends type
// hello (carrying its Ed25519 public key after the ID) until it hears from
// the listener, then type data. Nothing is authenticated: never use it
// outside tests.
package plainsession

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/net/ipv4"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/security"
	"github.com/ipv8/go-ipv8/transport"
)

const (
	typeHello = 0x01
	typeData  = 0x02
	hdrLen    = 1 + 8
	helloLen  = hdrLen + ed25519.PublicKeySize
	// maxEarly bounds payloads held before the receiver is set.
	maxEarly = 256
)

// Endpoint demultiplexes sessions on one packet conn.
type Endpoint struct {
	pc         transport.PacketConn
	key        *peer.PrivateKey
	maxPayload int
	batch      *ipv4.PacketConn // sendmmsg/recvmmsg when pc is a *net.UDPConn
	gso        bool             // send with UDP GSO (Linux, UDP socket, Options.GSO)

	mu       sync.Mutex
	sessions map[uint64]*Session
	accept   chan *Session
	closed   bool
	done     chan struct{}
}

// New starts an endpoint on pc; maxPayload is what its sessions' MaxPayload
// reports (it must leave room for the 41-byte hello header in pc's MTU).
func New(pc transport.PacketConn, key *peer.PrivateKey, maxPayload int) *Endpoint {
	return NewWithGSO(pc, key, maxPayload, false)
}

// NewWithGSO is New with UDP GSO for SendBatch when gso is set and pc is
// a UDP socket on Linux.
func NewWithGSO(pc transport.PacketConn, key *peer.PrivateKey, maxPayload int, gso bool) *Endpoint {
	e := &Endpoint{pc: pc, key: key, maxPayload: maxPayload,
		sessions: make(map[uint64]*Session), accept: make(chan *Session, 1024), done: make(chan struct{})}
	if u, ok := pc.(*net.UDPConn); ok {
		e.batch = ipv4.NewPacketConn(u)
		e.gso = gso && gsoSupported
	}
	go e.readLoop()
	return e
}

// LocalAddr is the endpoint's address.
func (e *Endpoint) LocalAddr() netip.AddrPort {
	if a, ok := e.pc.LocalAddr().(*net.UDPAddr); ok {
		return a.AddrPort()
	}
	return netip.AddrPort{}
}

// Dial makes a session to the endpoint at addr, whose identity is remote.
// No packet is exchanged until the session sends.
func (e *Endpoint) Dial(addr netip.AddrPort, remote *peer.PublicKey) *Session {
	s := e.newSession(rand.Uint64(), addr, remote, true)
	e.mu.Lock()
	e.sessions[s.id] = s
	e.mu.Unlock()
	return s
}

// Accept waits for a session dialled by a remote.
func (e *Endpoint) Accept(ctx context.Context) (*Session, error) {
	select {
	case s := <-e.accept:
		return s, nil
	case <-e.done:
		return nil, security.ErrSessionClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close closes the endpoint and its packet conn.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.done)
	e.mu.Unlock()
	return e.pc.Close()
}

func (e *Endpoint) newSession(id uint64, addr netip.AddrPort, remote *peer.PublicKey, dialer bool) *Session {
	return &Session{e: e, id: id, addr: addr, remote: remote, hello: dialer, done: make(chan struct{})}
}

func (e *Endpoint) readLoop() {
	if e.batch != nil {
		e.readBatches()
		return
	}
	buf := make([]byte, 65536)
	for {
		n, from, err := e.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		e.handle(buf[:n], from)
	}
}

func (e *Endpoint) readBatches() {
	msgs := make([]ipv4.Message, 32)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 65536)}
	}
	for {
		n, err := e.batch.ReadBatch(msgs, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		for i := 0; i < n; i++ {
			m := &msgs[i]
			ua, _ := m.Addr.(*net.UDPAddr)
			if ua == nil {
				continue
			}
			e.handle(m.Buffers[0][:m.N], ua.AddrPort())
		}
	}
}

func (e *Endpoint) handle(b []byte, from netip.AddrPort) {
	if len(b) < hdrLen {
		return
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	id := binary.BigEndian.Uint64(b[1:9])
	e.mu.Lock()
	s := e.sessions[id]
	if s == nil {
		if b[0] != typeHello || len(b) < helloLen || e.closed {
			e.mu.Unlock()
			return
		}
		pk, err := peer.PublicKeyFromEd25519(ed25519.PublicKey(b[hdrLen:helloLen]))
		if err != nil {
			e.mu.Unlock()
			return
		}
		s = e.newSession(id, from, pk, false)
		select {
		case e.accept <- s:
			e.sessions[id] = s
		default:
			e.mu.Unlock()
			return
		}
	}
	e.mu.Unlock()
	payload := b[hdrLen:]
	if b[0] == typeHello {
		if len(b) < helloLen {
			return
		}
		payload = b[helloLen:]
	}
	s.receive(payload, from)
}

// Session is one plain session.
type Session struct {
	e      *Endpoint
	id     uint64
	remote *peer.PublicKey

	mu       sync.Mutex
	addr     netip.AddrPort
	hello    bool // still sending hello packets (dialler, nothing heard yet)
	receiver func([]byte)
	early    [][]byte
	closed   bool
	done     chan struct{}
	scratch  [][]byte
	msgs     []ipv4.Message
	gsoBuf   []byte
	oob      []byte
}

var _ security.Session = (*Session)(nil)

func (s *Session) LocalPeer() peer.ID               { return s.e.key.ID() }
func (s *Session) RemotePeer() peer.ID              { return peer.IDFromPublicKey(s.remote) }
func (s *Session) RemotePublicKey() *peer.PublicKey { return s.remote }
func (s *Session) MaxPayload() int                  { return s.e.maxPayload }
func (s *Session) Done() <-chan struct{}            { return s.done }

// RemoteAddr is where packets go now.
func (s *Session) RemoteAddr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

func (s *Session) receive(b []byte, from netip.AddrPort) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.hello = false
	if from != s.addr {
		s.addr = from // roaming: the session follows its peer
	}
	f := s.receiver
	if f == nil {
		if len(s.early) < maxEarly {
			s.early = append(s.early, append([]byte(nil), b...))
		}
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	f(b)
}

// SetReceiver installs f and delivers what arrived before it.
func (s *Session) SetReceiver(f func(b []byte)) {
	s.mu.Lock()
	s.receiver = f
	early := s.early
	s.early = nil
	s.mu.Unlock()
	for _, b := range early {
		f(b)
	}
}

func (s *Session) header(b []byte) []byte {
	t := byte(typeData)
	if s.hello {
		t = typeHello
	}
	b = append(b, t)
	b = binary.BigEndian.AppendUint64(b, s.id)
	if s.hello {
		b = append(b, s.e.key.Public().Ed25519()...)
	}
	return b
}

// Send sends one payload.
func (s *Session) Send(b []byte) error {
	if len(b) > s.e.maxPayload {
		return security.ErrTooLarge
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return security.ErrSessionClosed
	}
	if len(s.scratch) == 0 {
		s.scratch = [][]byte{make([]byte, 0, helloLen+s.e.maxPayload)}
	}
	pkt := append(s.header(s.scratch[0][:0]), b...)
	addr := s.addr
	_, err := s.e.pc.WriteToUDPAddrPort(pkt, addr)
	s.mu.Unlock()
	return err
}

// SendBatch sends several payloads: on Linux with UDP GSO (runs of
// equal-sized packets in one sendmsg each), else with one sendmmsg.
func (s *Session) SendBatch(payloads [][]byte) (int, error) {
	if s.e.batch == nil {
		for i, p := range payloads {
			if err := s.Send(p); err != nil {
				return i, err
			}
		}
		return len(payloads), nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, security.ErrSessionClosed
	}
	for _, p := range payloads {
		if len(p) > s.e.maxPayload {
			return 0, security.ErrTooLarge
		}
	}
	if gsoSupported && s.e.gso {
		return s.sendGSO(payloads)
	}
	for len(s.scratch) < len(payloads) {
		s.scratch = append(s.scratch, make([]byte, 0, helloLen+s.e.maxPayload))
	}
	if len(s.msgs) < len(payloads) {
		s.msgs = make([]ipv4.Message, len(payloads))
		for i := range s.msgs {
			s.msgs[i].Buffers = make([][]byte, 1)
		}
	}
	ua := net.UDPAddrFromAddrPort(s.addr)
	for i, p := range payloads {
		s.scratch[i] = append(s.header(s.scratch[i][:0]), p...)
		s.msgs[i].Buffers[0] = s.scratch[i]
		s.msgs[i].Addr = ua
	}
	sent := 0
	for sent < len(payloads) {
		n, err := s.e.batch.WriteBatch(s.msgs[sent:len(payloads)], 0)
		if err != nil {
			return sent, err
		}
		sent += n
	}
	return sent, nil
}

// sendGSO sends runs of packets of one size (the last of a run may be
// shorter) with one system call each.
func (s *Session) sendGSO(payloads [][]byte) (int, error) {
	u := s.e.pc.(*net.UDPConn)
	if cap(s.gsoBuf) < 65535 {
		s.gsoBuf = make([]byte, 0, 65535)
		s.oob = make([]byte, 64)
	}
	sent := 0
	for sent < len(payloads) {
		buf := s.gsoBuf[:0]
		seg := len(s.header(nil)) + len(payloads[sent])
		n := 0
		for sent+n < len(payloads) && n < maxGSOSegments {
			p := payloads[sent+n]
			size := len(s.header(nil)) + len(p)
			if size > seg || len(buf)+size > cap(buf) {
				break
			}
			buf = append(s.header(buf), p...)
			n++
			if size < seg {
				break // a shorter packet ends the run
			}
		}
		var err error
		if n == 1 {
			_, err = u.WriteToUDPAddrPort(buf, s.addr)
		} else {
			err = writeGSO(u, buf, seg, s.addr, s.oob)
		}
		if err != nil {
			return sent, err
		}
		sent += n
	}
	return sent, nil
}

// Close ends the session.
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	s.e.mu.Lock()
	delete(s.e.sessions, s.id)
	s.e.mu.Unlock()
	return nil
}
