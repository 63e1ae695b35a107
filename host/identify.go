package host

import (
	"context"
	"time"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocols/identify"
	"github.com/ipv8/go-ipv8/transport"
)

// identifyTimeout bounds one identify exchange.
const identifyTimeout = 30 * time.Second

// identifyDelay is how long a new Conn waits before its end asks the peer
// who it is. Identify is bookkeeping: both ends ask at once, so without
// the wait its two streams (four packets, and the answers' encoding) go out
// in the same instant as the request an application sends right after
// Connect, and that first round trip waits behind them (+20–40 µs on
// loopback, where set-up is CPU-bound). A request on a LAN is answered
// within the wait; the peer's protocols and our observed address come
// 2 ms later.
const identifyDelay = 2 * time.Millisecond

func (h *Host) registerIdentify() {
	h.SetStreamHandler(identify.ID, func(s transport.Stream) {
		defer s.Close()
		s.SetWriteDeadline(time.Now().Add(identifyTimeout))
		info := &identify.Info{
			PublicKey:       peer.MarshalLibp2pPublicKey(h.key.Public().Ed25519()),
			ListenAddrs:     h.Addrs(),
			Protocols:       h.Protocols(),
			ObservedAddr:    remoteAddr(s.Conn()), // nil over a relay: we see the relay
			ProtocolVersion: identify.ProtocolVersion,
			AgentVersion:    h.cfg.AgentVersion,
		}
		if err := identify.Write(s, info); err != nil {
			h.log.Debug("identify: answering", "peer", s.Conn().RemotePeer(), "err", err)
		}
	})
}

// identifyPeer asks the remote of c who it is and records the answer.
func (h *Host) identifyPeer(c transport.Conn) {
	ctx, cancel := context.WithTimeout(h.ctx, identifyTimeout)
	defer cancel()
	p := c.RemotePeer()
	s, err := c.OpenStream(ctx, identify.ID)
	if err != nil {
		h.log.Debug("identify: opening stream", "peer", p, "err", err)
		return
	}
	defer s.Close()
	s.CloseWrite()
	s.SetReadDeadline(time.Now().Add(identifyTimeout))
	info, err := identify.Read(s)
	if err != nil {
		h.log.Debug("identify: reading", "peer", p, "err", err)
		return
	}
	if id, err := info.PeerID(); err != nil || id != p {
		h.log.Warn("identify: peer announced another key than it authenticated with; ignoring", "peer", p)
		return
	}
	h.ps.SetProtocols(p, info.Protocols)
	h.ps.SetAgent(p, info.AgentVersion)
	if len(info.ListenAddrs) > 0 {
		h.ps.AddAddrs(p, info.ListenAddrs, RecentlyConnectedAddrTTL)
	}
	if info.ObservedAddr != nil && !relayed(c) {
		h.recordObserved(p, c.LocalMultiaddr(), info.ObservedAddr)
	}
	h.bus.emit(EvtPeerIdentified{
		Peer: p, Protocols: info.Protocols, ListenAddrs: info.ListenAddrs,
		AgentVersion: info.AgentVersion, ObservedAddr: info.ObservedAddr,
	})
}
