package host

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
)

// connEntry is the host's record of one Conn. Its fields are ordered to
// fit 64 bytes: the host keeps one for every Conn, idle ones included.
type connEntry struct {
	conn     transport.Conn
	remote   ma.Multiaddr // last known remote address, for EvtPeerAddrChanged
	streams  atomic.Int64 // open streams, for draining duplicates
	draining atomic.Bool
	ended    atomic.Bool // connEnded ran
	inbound  bool
}

// dialer is the peer that dialled the Conn.
func (e *connEntry) dialer(local peer.ID) peer.ID {
	if e.inbound {
		return e.conn.RemotePeer()
	}
	return local
}

// Conns returns the live Conn of every connected peer.
func (h *Host) Conns() []transport.Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]transport.Conn, 0, len(h.conns))
	for _, e := range h.conns {
		out = append(out, e.conn)
	}
	return out
}

// Conn returns the live Conn to p, or nil.
func (h *Host) Conn(p peer.ID) transport.Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e := h.conns[p]; e != nil {
		return e.conn
	}
	return nil
}

// Peers returns the IDs of the connected peers.
func (h *Host) Peers() []peer.ID {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]peer.ID, 0, len(h.conns))
	for p := range h.conns {
		out = append(out, p)
	}
	return out
}

// ClosePeer closes the Conn to p.
func (h *Host) ClosePeer(p peer.ID) error {
	h.mu.Lock()
	e := h.conns[p]
	h.mu.Unlock()
	if e == nil {
		return nil
	}
	return e.conn.Close()
}

func (h *Host) acceptLoop(l transport.Listener) {
	defer h.wg.Done()
	for {
		c, err := l.Accept(h.ctx)
		if err != nil {
			if h.ctx.Err() != nil || errors.Is(err, transport.ErrTransportClosed) {
				return
			}
			h.log.Debug("accept failed", "listener", l.Multiaddr(), "err", err)
			select {
			case <-h.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		h.addConn(c, true)
	}
}

// addConn registers a new Conn. When the host already has a Conn to the
// same peer (a simultaneous dial), both sides keep the Conn dialled by the
// peer with the smaller ID and drain the other: it takes no new streams
// and closes when its last stream ends. It returns the Conn to use.
func (h *Host) addConn(c transport.Conn, inbound bool) transport.Conn {
	p := c.RemotePeer()
	remote := remoteAddr(c)
	e := &connEntry{conn: c, inbound: inbound, remote: remote}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		c.CloseWithError(transport.CodeConnClosing, "host closing")
		return nil
	}
	old := h.conns[p]
	if h.registered(old, c) {
		// A transport with one session per peer hands the same Conn to
		// a dial and to an accept that crossed it: it is registered once.
		h.mu.Unlock()
		return c
	}
	winner, loser := e, (*connEntry)(nil)
	if old != nil {
		winner, loser = h.pickConn(old, e)
		if loser == old {
			h.draining[old] = struct{}{}
		} else {
			h.draining[e] = struct{}{}
		}
	}
	h.conns[p] = winner
	h.mu.Unlock()

	if remote != nil { // a relayed Conn's remote is the relay
		h.ps.AddAddrs(p, []ma.Multiaddr{remote}, ConnectedAddrTTL)
	}
	if pk := c.RemotePublicKey(); pk != nil {
		h.ps.SetPublicKey(p, pk)
	}
	if cc, ok := c.(transport.CallbackConn); ok {
		// The transport calls us: no goroutine waits on an idle Conn.
		h.wg.Add(1)
		cc.SetCallbacks(
			func(s transport.Stream) { h.inboundStream(e, s) },
			func(b []byte) { h.inboundMessage(e, b) },
			func() { h.connEnded(e); h.wg.Done() })
	} else {
		h.wg.Add(2)
		go h.serveConn(e)
		go h.serveDatagrams(e)
	}
	if relayed(c) {
		h.wg.Add(1)
		go h.watchRelayed(e) // nat.go
	}
	if old == nil {
		if h.log.Enabled(h.ctx, slog.LevelDebug) {
			h.log.Debug("connected", "peer", p, "inbound", inbound, "addr", c.RemoteMultiaddr(), "transport", c.Transport())
		}
		h.bus.emit(EvtPeerConnected{Peer: p, Conn: c, Inbound: inbound})
		if !h.cfg.DisableIdentify {
			h.wg.Add(1)
			time.AfterFunc(identifyDelay, func() {
				defer h.wg.Done()
				// transport.Ended, not Done: Done would make the Conn keep a
				// channel for the rest of its life.
				if h.ctx.Err() == nil && !transport.Ended(c) {
					h.identifyPeer(c)
				}
			})
		}
	}
	if loser != nil {
		h.log.Debug("simultaneous connection collapsed", "peer", p)
		loser.draining.Store(true)
		h.maybeCloseDrained(loser)
	}
	return winner.conn
}

// registered reports whether c already has an entry (live or draining).
// h.mu is held.
func (h *Host) registered(live *connEntry, c transport.Conn) bool {
	if live != nil && live.conn == c {
		return true
	}
	for d := range h.draining {
		if d.conn == c {
			return true
		}
	}
	return false
}

// pickConn decides which of two Conns to one peer survives. Both ends
// must compute the same answer from what they both see: first the
// transport (the raw-UDP one over QUIC: a transport with one session per
// peer may hand both ends the same Conn from crossing dials, so each end
// thinks it dialled it), then the Conn dialled by the smaller peer ID, and
// among two dialled by the same peer the older one.
func (h *Host) pickConn(old, e *connEntry) (winner, loser *connEntry) {
	if ot, nt := transportRank(old.conn.Transport()), transportRank(e.conn.Transport()); ot != nt {
		if nt < ot {
			return e, old
		}
		return old, e
	}
	od, nd := old.dialer(h.id), e.dialer(h.id)
	if od == nd {
		return old, e
	}
	small := min(h.id, e.conn.RemotePeer())
	if nd == small {
		return e, old
	}
	return old, e
}

// drainGrace is how long a duplicate Conn must have had no streams before
// it closes: long enough for the remote, which may not have seen the other
// Conn yet, to learn of it before opening more streams on this one.
const drainGrace = time.Second

// transportRank orders transports for pickConn: lower wins.
func transportRank(name string) int {
	switch name {
	case "udp":
		return 0
	case "quic":
		return 1
	}
	return 2
}

func (h *Host) maybeCloseDrained(e *connEntry) {
	if !e.draining.Load() || e.streams.Load() != 0 {
		return
	}
	time.AfterFunc(drainGrace, func() {
		if e.streams.Load() == 0 {
			e.conn.CloseWithError(transport.CodeDuplicateConn, "duplicate connection")
		}
	})
}

// connEnded unregisters a Conn that has ended.
func (h *Host) connEnded(e *connEntry) {
	if !e.ended.CompareAndSwap(false, true) {
		return
	}
	p := e.conn.RemotePeer()
	h.mu.Lock()
	delete(h.draining, e)
	last := false
	if h.conns[p] == e {
		delete(h.conns, p)
		last = true
	}
	h.mu.Unlock()
	if last {
		h.ps.UpdateAddrs(p, ConnectedAddrTTL, RecentlyConnectedAddrTTL)
		h.log.Debug("disconnected", "peer", p)
		h.bus.emit(EvtPeerDisconnected{Peer: p})
	}
}

// serveConn accepts the streams the remote opens and hands each to its
// protocol's handler; it ends with the Conn.
func (h *Host) serveConn(e *connEntry) {
	defer h.wg.Done()
	defer h.connEnded(e)
	for {
		s, err := e.conn.AcceptStream(h.ctx)
		if err != nil {
			e.conn.CloseWithError(transport.CodeConnClosing, "")
			return
		}
		h.inboundStream(e, s)
	}
}

// inboundStream hands a stream the remote opened to its protocol's handler
// on a goroutine of its own, or resets it when nobody serves the protocol.
func (h *Host) inboundStream(e *connEntry, s transport.Stream) {
	h.checkRemoteAddr(e)
	f := h.handler(s.Protocol())
	if f == nil {
		h.log.Debug("stream for unsupported protocol", "peer", e.conn.RemotePeer(), "protocol", s.Protocol())
		s.Reset(transport.CodeProtocolNotSupported)
		return
	}
	go f(h.track(e, s))
}

// checkRemoteAddr emits EvtPeerAddrChanged when the Conn's remote address
// moved (roaming, NAT rebinding).
func (h *Host) checkRemoteAddr(e *connEntry) {
	now := remoteAddr(e.conn)
	h.mu.Lock()
	old := e.remote
	changed := now != nil && !now.Equal(old)
	if old == nil {
		// A Conn that started relayed: its first direct address is news
		// too, but only to the watcher of its path (EvtPeerPathChanged).
		e.remote = now
		changed = false
		h.mu.Unlock()
		if now != nil {
			h.ps.AddAddrs(e.conn.RemotePeer(), []ma.Multiaddr{now}, ConnectedAddrTTL)
		}
		return
	}
	if changed {
		e.remote = now
	}
	h.mu.Unlock()
	if changed {
		h.ps.AddAddrs(e.conn.RemotePeer(), []ma.Multiaddr{now}, ConnectedAddrTTL)
		h.bus.emit(EvtPeerAddrChanged{Peer: e.conn.RemotePeer(), Old: old, New: now})
	}
}

// track counts a stream as open on its Conn until it is closed or reset,
// so a draining duplicate Conn closes only when its streams are done.
func (h *Host) track(e *connEntry, s transport.Stream) transport.Stream {
	e.streams.Add(1)
	return &trackedStream{Stream: s, done: func() {
		if e.streams.Add(-1) == 0 {
			h.maybeCloseDrained(e)
		}
	}}
}

type trackedStream struct {
	transport.Stream
	once sync.Once
	done func()
}

func (s *trackedStream) Close() error {
	err := s.Stream.Close()
	s.once.Do(s.done)
	return err
}

func (s *trackedStream) Reset(code transport.ErrorCode) error {
	err := s.Stream.Reset(code)
	s.once.Do(s.done)
	return err
}

// liveConn returns the Conn new streams to p should use.
func (h *Host) liveConn(p peer.ID) *connEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.conns[p]
	if e == nil {
		return nil
	}
	if transport.Ended(e.conn) {
		return nil
	}
	return e
}

func ctxErr(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return ctx.Err()
}
