package relay

import (
	"crypto/ed25519"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipv8/go-ipv8/peer"
)

// server is the relaying role of an Endpoint. Requests are handled on the
// port's read goroutine; the data path takes a read lock, one map lookup
// and two atomic adds, and forwards the packet unchanged.
type server struct {
	e       *Endpoint
	lim     Limits
	cookies *cookies

	mu       sync.RWMutex
	resv     map[peer.ID]*reservation
	resvIP   map[netip.Addr]int
	circuits map[uint32]*scircuit
	pending  map[pendingKey]*scircuit // by initiator and CONNECT nonce
	perPeer  map[peer.ID]int
	perIP    map[netip.Addr]int

	sigs  bucket // signature verifications
	stray bucket // answers to DATA from an address that is not the circuit's end

	stats struct {
		opened, bytes, packets, refused, unknown, malformed, atLimit atomic.Uint64
	}
}

type reservation struct {
	id      peer.ID
	key     [KeyLen]byte
	addr    netip.AddrPort
	expires time.Time
}

type pendingKey struct {
	initiator peer.ID
	nonce     uint64
}

// scircuit is a circuit as the relay keeps it: a is the initiator, b the
// target. The addresses change only under mu's write lock (an end that
// re-reserves from a new address).
type scircuit struct {
	id         uint32
	a, b       netip.AddrPort
	aID, bID   peer.ID
	aKey       [KeyLen]byte // the initiator's key, for INCOMING
	nonce      uint64
	active     bool
	created    time.Time
	deadline   time.Time // accept deadline while pending
	nextResend time.Time
	limit      Limit
	bytes      atomic.Uint64
	touched    atomic.Bool // a packet crossed since the last housekeeping
	lastActive time.Time   // housekeeping's record of the last tick it was touched
	closed     bool
}

func newServer(e *Endpoint) *server {
	now := e.clk.Now()
	return &server{
		e: e, lim: e.cfg.Limits, cookies: newCookies(e.cfg.Rand, now),
		resv: map[peer.ID]*reservation{}, resvIP: map[netip.Addr]int{},
		circuits: map[uint32]*scircuit{}, pending: map[pendingKey]*scircuit{},
		perPeer: map[peer.ID]int{}, perIP: map[netip.Addr]int{},
		sigs:  newBucket(float64(e.cfg.Limits.SignaturesPerSecond), now),
		stray: newBucket(strayAnswers, now),
	}
}

func (s *server) circuitLimit() Limit {
	return Limit{Duration: uint32(s.lim.CircuitDuration / time.Second), Bytes: s.lim.CircuitBytes}
}

// data forwards a DATA packet of one of the relay's circuits. It reports
// false when the circuit is not the relay's (the endpoint's client role
// may own it).
func (s *server) data(pkt []byte, from netip.AddrPort) bool {
	id, payload, err := ParseData(pkt)
	if err != nil {
		return false
	}
	s.mu.RLock()
	c := s.circuits[id]
	var to netip.AddrPort
	ok := c != nil && c.active && !c.closed
	if ok {
		switch from {
		case c.a:
			to = c.b
		case c.b:
			to = c.a
		default:
			ok = false
		}
	}
	s.mu.RUnlock()
	if c == nil {
		return false
	}
	if !ok {
		s.stats.unknown.Add(1)
		if c.active && s.stray.take(s.e.clk.Now()) {
			// Perhaps an end whose address changed: tell it (rate-limited,
			// smaller than what came) so that it re-reserves from there.
			s.e.send(&Msg{Kind: KindError, Circuit: id, Code: CodeUnknownCircuit}, from)
		}
		return false
	}
	n := c.bytes.Add(uint64(len(payload)))
	if n > c.limit.Bytes && c.limit.Bytes > 0 {
		s.closeCircuit(c, CodeDataLimit)
		return true
	}
	c.touched.Store(true)
	s.stats.bytes.Add(uint64(len(payload)))
	s.stats.packets.Add(1)
	_ = s.e.port.WriteTo(pkt, to)
	return true
}

func (s *server) refuse(m *Msg, code Code, to netip.AddrPort) {
	s.stats.refused.Add(1)
	s.e.send(&Msg{Kind: KindError, Nonce: m.Nonce, Circuit: m.Circuit, Code: code}, to)
}

// strayAnswers bounds the ERRORs per second sent for DATA from an
// address that is not its circuit's end.
const strayAnswers = 100

// bucket is a token bucket refilled at rate per second, holding at most
// rate tokens.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, now time.Time) bucket {
	return bucket{rate: rate, tokens: rate, last: now}
}

func (b *bucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// verify checks the cookie and the signature of a RESERVE or CONNECT.
func (s *server) verify(m *Msg, from netip.AddrPort, now time.Time) Code {
	if !s.cookies.check(from, m.Cookie, now) {
		return CodeBadCookie
	}
	if !s.sigs.take(now) {
		return CodeSignatureRateLimit
	}
	if !ed25519.Verify(ed25519.PublicKey(m.Key[:]), SignedBytes(m), m.Sig[:]) {
		return CodeBadSignature
	}
	return CodeNone
}

func (s *server) handle(m *Msg, from netip.AddrPort) {
	now := s.e.clk.Now()
	switch m.Kind {
	case KindHello:
		s.e.send(&Msg{Kind: KindChallenge, Nonce: m.Nonce, Cookie: s.cookies.make(from, now), Observed: from}, from)
	case KindPing:
		s.e.send(&Msg{Kind: KindPong, Nonce: m.Nonce, Observed: from}, from)
	case KindReserve:
		if code := s.verify(m, from, now); code != CodeNone {
			s.refuse(m, code, from)
			return
		}
		s.reserve(m, from, now)
	case KindConnect:
		if code := s.verify(m, from, now); code != CodeNone {
			s.refuse(m, code, from)
			return
		}
		s.connect(m, from, now)
	case KindAccept:
		s.accept(m, from)
	}
}

// reserve makes or refreshes the sender's reservation. A reservation
// made or refreshed from a new address moves every circuit the peer is an
// end of there (the peer's address changed; its signature over a cookie
// for the new address proves it is there).
func (s *server) reserve(m *Msg, from netip.AddrPort, now time.Time) {
	id := peer.IDFromEd25519(ed25519.PublicKey(m.Key[:]))
	s.mu.Lock()
	r := s.resv[id]
	if r == nil {
		if len(s.resv) >= s.lim.MaxReservations {
			s.mu.Unlock()
			s.refuse(m, CodeReservations, from)
			return
		}
		if s.resvIP[from.Addr()] >= s.lim.MaxReservationsPerIP {
			s.mu.Unlock()
			s.refuse(m, CodeReservationsPerIP, from)
			return
		}
		r = &reservation{id: id, key: m.Key, addr: from}
		s.resv[id] = r
		s.resvIP[from.Addr()]++
	} else if r.addr != from {
		if r.addr.Addr() != from.Addr() {
			if s.resvIP[from.Addr()] >= s.lim.MaxReservationsPerIP {
				s.mu.Unlock()
				s.refuse(m, CodeReservationsPerIP, from)
				return
			}
			s.decIP(s.resvIP, r.addr.Addr())
			s.resvIP[from.Addr()]++
		}
		s.e.log.Debug("relay: reservation moved", "peer", id.ShortString(), "from", r.addr, "to", from)
		r.addr = from
	}
	s.moveCircuitsLocked(id, from)
	r.expires = now.Add(s.lim.ReservationTTL)
	s.mu.Unlock()
	s.e.send(&Msg{Kind: KindReserved, Nonce: m.Nonce, TTL: uint32(s.lim.ReservationTTL / time.Second),
		Limit: s.circuitLimit(), Observed: from}, from)
}

// moveCircuitsLocked points the circuits peer id is an end of at addr.
func (s *server) moveCircuitsLocked(id peer.ID, addr netip.AddrPort) {
	for _, c := range s.circuits {
		if c.aID == id && c.a != addr {
			s.decIP(s.perIP, c.a.Addr())
			s.perIP[addr.Addr()]++
			c.a = addr
		}
		if c.bID == id && c.b != addr {
			c.b = addr
		}
	}
}

func (s *server) decIP(m map[netip.Addr]int, ip netip.Addr) {
	if m[ip] <= 1 {
		delete(m, ip)
	} else {
		m[ip]--
	}
}

// connect opens a circuit from the sender to the target's reservation, or
// re-answers a CONNECT it has seen (a retransmission).
func (s *server) connect(m *Msg, from netip.AddrPort, now time.Time) {
	aID := peer.IDFromEd25519(ed25519.PublicKey(m.Key[:]))
	bID := peer.IDFromEd25519(ed25519.PublicKey(m.Target[:]))
	s.mu.Lock()
	if c := s.pending[pendingKey{aID, m.Nonce}]; c != nil {
		active, b := c.active, c.b
		s.mu.Unlock()
		if active {
			s.e.send(&Msg{Kind: KindConnected, Nonce: m.Nonce, Circuit: c.id, Limit: c.limit, Observed: b}, from)
		}
		return
	}
	code := CodeNone
	r := s.resv[bID]
	switch {
	case aID == bID:
		code = CodeSelf
	case r == nil || now.After(r.expires):
		code = CodeNoReservation
	case len(s.circuits) >= s.lim.MaxCircuits:
		code = CodeCircuits
	case s.perPeer[aID] >= s.lim.MaxCircuitsPerPeer || s.perPeer[bID] >= s.lim.MaxCircuitsPerPeer:
		code = CodeCircuitsPerPeer
	case s.perIP[from.Addr()] >= s.lim.MaxCircuitsPerIP:
		code = CodeCircuitsPerIP
	}
	if code != CodeNone {
		s.mu.Unlock()
		s.refuse(m, code, from)
		return
	}
	var id uint32
	for id == 0 || s.circuits[id] != nil {
		id = uint32(s.e.nonce())
	}
	c := &scircuit{id: id, a: from, b: r.addr, aID: aID, bID: bID, aKey: m.Key, nonce: m.Nonce, created: now,
		deadline: now.Add(s.lim.AcceptTimeout), nextResend: now.Add(resendInterval), limit: s.circuitLimit(), lastActive: now}
	s.circuits[id] = c
	s.pending[pendingKey{aID, m.Nonce}] = c
	s.perPeer[aID]++
	s.perPeer[bID]++
	s.perIP[from.Addr()]++
	s.mu.Unlock()
	s.sendIncoming(c)
}

// resendInterval is how often the relay repeats an INCOMING that was not
// accepted yet.
const resendInterval = 250 * time.Millisecond

// sendIncoming tells the target (under s.mu or with the addresses copied).
func (s *server) sendIncoming(c *scircuit) {
	s.mu.RLock()
	m := Msg{Kind: KindIncoming, Circuit: c.id, Key: c.aKey, Limit: c.limit, Observed: c.a}
	to := c.b
	s.mu.RUnlock()
	s.e.send(&m, to)
}

func (s *server) accept(m *Msg, from netip.AddrPort) {
	s.mu.Lock()
	c := s.circuits[m.Circuit]
	if c == nil || c.closed || c.b != from {
		s.mu.Unlock()
		s.refuse(m, CodeUnknownCircuit, from)
		return
	}
	first := !c.active
	c.active = true
	a, b, nonce := c.a, c.b, c.nonce
	s.mu.Unlock()
	if first {
		s.stats.opened.Add(1)
		s.e.log.Debug("relay: circuit open", "id", c.id, "initiator", c.aID.ShortString(), "target", c.bID.ShortString())
	}
	s.e.send(&Msg{Kind: KindConnected, Nonce: nonce, Circuit: c.id, Limit: c.limit, Observed: b}, a)
}

// closeFrom handles a CLOSE from an end of one of the relay's circuits; it
// reports false when the circuit is not the relay's.
func (s *server) closeFrom(m *Msg, from netip.AddrPort) bool {
	s.mu.RLock()
	c := s.circuits[m.Circuit]
	ours := c != nil && (c.a == from || c.b == from)
	s.mu.RUnlock()
	if !ours {
		return false
	}
	s.closeCircuit(c, CodeNone)
	return true
}

// closeCircuit removes c and tells both ends why.
func (s *server) closeCircuit(c *scircuit, code Code) {
	s.mu.Lock()
	if c.closed {
		s.mu.Unlock()
		return
	}
	c.closed = true
	delete(s.circuits, c.id)
	delete(s.pending, pendingKey{c.aID, c.nonce})
	for _, id := range []peer.ID{c.aID, c.bID} {
		if s.perPeer[id] <= 1 {
			delete(s.perPeer, id)
		} else {
			s.perPeer[id]--
		}
	}
	s.decIP(s.perIP, c.a.Addr())
	a, b, active := c.a, c.b, c.active
	s.mu.Unlock()
	if code == CodeDurationLimit || code == CodeDataLimit || code == CodeIdle {
		s.stats.atLimit.Add(1)
	}
	if !active {
		s.e.send(&Msg{Kind: KindError, Nonce: c.nonce, Circuit: c.id, Code: code}, a)
		return
	}
	s.e.send(&Msg{Kind: KindClose, Circuit: c.id, Code: code}, a)
	s.e.send(&Msg{Kind: KindClose, Circuit: c.id, Code: code}, b)
}

// housekeeping expires reservations and circuits and repeats INCOMINGs.
func (s *server) housekeeping(now time.Time) {
	var ends []*scircuit
	var codes []Code
	var resends []*scircuit
	s.mu.Lock()
	for id, r := range s.resv {
		if now.After(r.expires) {
			delete(s.resv, id)
			s.decIP(s.resvIP, r.addr.Addr())
		}
	}
	for _, c := range s.circuits {
		if c.touched.Swap(false) {
			c.lastActive = now
		}
		switch {
		case !c.active && now.After(c.deadline):
			ends, codes = append(ends, c), append(codes, CodeRefused)
		case !c.active && !now.Before(c.nextResend):
			c.nextResend = now.Add(resendInterval)
			resends = append(resends, c)
		case c.active && c.limit.Duration > 0 && now.Sub(c.created) >= time.Duration(c.limit.Duration)*time.Second:
			ends, codes = append(ends, c), append(codes, CodeDurationLimit)
		case c.active && now.Sub(c.lastActive) >= s.lim.CircuitIdle:
			ends, codes = append(ends, c), append(codes, CodeIdle)
		}
	}
	s.mu.Unlock()
	for i, c := range ends {
		s.closeCircuit(c, codes[i])
	}
	for _, c := range resends {
		s.sendIncoming(c)
	}
}

func (s *server) shutdown() {
	s.mu.RLock()
	cs := make([]*scircuit, 0, len(s.circuits))
	for _, c := range s.circuits {
		cs = append(cs, c)
	}
	s.mu.RUnlock()
	for _, c := range cs {
		s.closeCircuit(c, CodeShutdown)
	}
}

func (s *server) snapshot() Stats {
	s.mu.RLock()
	st := Stats{Reservations: len(s.resv), Circuits: len(s.circuits)}
	s.mu.RUnlock()
	st.CircuitsOpened = s.stats.opened.Load()
	st.BytesRelayed = s.stats.bytes.Load()
	st.PacketsRelayed = s.stats.packets.Load()
	st.Refused = s.stats.refused.Load()
	st.DroppedUnknown = s.stats.unknown.Load()
	st.DroppedMalformed = s.stats.malformed.Load()
	st.ClosedAtLimit = s.stats.atLimit.Load()
	return st
}
