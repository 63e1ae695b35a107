package udp

import (
	"context"
	"fmt"
	"net/netip"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/security"
	"github.com/ipv8/go-ipv8/transport"
)

// Relayed addresses. A peer behind a NAT that holds a reservation at a
// relay is reachable at
//
//	/ip4/R/udp/N/ipv8/p2p/RELAY/p2p-circuit(/p2p/PEER)
//
// (the relay's address and identity, then libp2p's circuit marker). The
// transport dials such an address by opening a circuit through the relay
// (CircuitDialer) and running the Noise handshake over it
// (security.PathDialer): the relay forwards sealed packets and sees only
// ciphertext. The Conn reports Stats().Path == transport.PathRelayed until
// NAT traversal moves its session to a punched direct path.

// CircuitDialer opens relayed paths for the transport. The root package
// wires nat/relay in; this package does not import it.
type CircuitDialer interface {
	// DialCircuit opens a circuit to p through the relay at addr, whose
	// identity is relay, and returns it as a path for a session. Packets
	// that come back over it go to the security transport (the dialer
	// routes them).
	DialCircuit(ctx context.Context, addr netip.AddrPort, relay, p peer.ID) (Circuit, error)
}

// Circuit is a relayed path the transport may close when no session uses
// it.
type Circuit interface {
	security.Path
	Close() error
}

// circuitAddr is a parsed relayed address.
type circuitAddr struct {
	relayAddr netip.AddrPort
	relay     peer.ID
	target    peer.ID // "" when the address does not end in /p2p/PEER
}

// parseCircuitAddr reads /ip4|ip6/…/udp/N/ipv8/p2p/RELAY/p2p-circuit with
// an optional /p2p/PEER.
func parseCircuitAddr(m ma.Multiaddr) (circuitAddr, error) {
	ap, rest, err := transport.ToAddrPort(m)
	if err != nil {
		return circuitAddr{}, err
	}
	bad := fmt.Errorf("%w: %s is not /ip4|ip6/…/udp/N/ipv8/p2p/RELAY/p2p-circuit", transport.ErrAddrNotSupported, m)
	if (len(rest) != 3 && len(rest) != 4) || rest[0].Code() != peer.P_IPV8 || rest[1].Code() != ma.P_P2P || rest[2].Code() != ma.P_CIRCUIT {
		return circuitAddr{}, bad
	}
	if !ap.Addr().IsValid() || ap.Addr().IsUnspecified() || ap.Port() == 0 {
		return circuitAddr{}, fmt.Errorf("%w: %s has no usable relay address", transport.ErrAddrNotSupported, m)
	}
	relay, err := peer.IDFromBytes(rest[1].RawValue())
	if err != nil {
		return circuitAddr{}, fmt.Errorf("%w: %s: relay ID: %v", transport.ErrAddrNotSupported, m, err)
	}
	ca := circuitAddr{relayAddr: ap, relay: relay}
	if len(rest) == 4 {
		if rest[3].Code() != ma.P_P2P {
			return circuitAddr{}, bad
		}
		if ca.target, err = peer.IDFromBytes(rest[3].RawValue()); err != nil {
			return circuitAddr{}, fmt.Errorf("%w: %s: peer ID: %v", transport.ErrAddrNotSupported, m, err)
		}
	}
	return ca, nil
}

// IsCircuitAddr reports whether m is a relayed address
// (/…/p2p/RELAY/p2p-circuit), whichever transport it is for.
func IsCircuitAddr(m ma.Multiaddr) bool {
	for _, c := range m {
		if c.Code() == ma.P_CIRCUIT {
			return true
		}
	}
	return false
}

// canDialCircuit reports whether the transport can dial the relayed
// address m.
func (t *Transport) canDialCircuit(m ma.Multiaddr) bool {
	if t.circuits == nil {
		return false
	}
	if _, ok := t.sec.(security.PathDialer); !ok {
		return false
	}
	_, err := parseCircuitAddr(m)
	return err == nil
}

// dialCircuit opens a circuit to p through the relay in raddr and a Noise
// session over it. A session with p that is already up (or comes up over
// another address meanwhile) is used instead, and the circuit closed.
func (t *Transport) dialCircuit(ctx context.Context, raddr ma.Multiaddr, p peer.ID) (transport.Conn, error) {
	ca, err := parseCircuitAddr(raddr)
	if err != nil {
		return nil, err
	}
	pd, ok := t.sec.(security.PathDialer)
	if t.circuits == nil || !ok {
		return nil, fmt.Errorf("%w: %s (no relay client)", transport.ErrAddrNotSupported, raddr)
	}
	if p == "" {
		p = ca.target
	}
	if p == "" {
		return nil, fmt.Errorf("udp: dial %s: a relayed address needs the peer's ID", raddr)
	}
	if ca.target != "" && ca.target != p {
		return nil, fmt.Errorf("udp: dial %s: the address names peer %s, not %s", raddr, ca.target, p)
	}
	if p == ca.relay || p == t.local {
		return nil, fmt.Errorf("udp: dial %s: a circuit to the relay itself or to oneself", raddr)
	}
	circ, err := t.circuits.DialCircuit(ctx, ca.relayAddr, ca.relay, p)
	if err != nil {
		t.log.Debug("circuit failed", "peer", p, "relay", ca.relayAddr, "err", err)
		return nil, fmt.Errorf("udp: dial %s: %w", raddr, err)
	}
	sess, err := pd.DialPath(ctx, circ, p, nil)
	if err != nil {
		circ.Close()
		err = dialErr(err)
		t.log.Debug("dial over circuit failed", "peer", p, "relay", ca.relayAddr, "err", err)
		return nil, err
	}
	if sess.RemotePeer() != p {
		sess.Close()
		circ.Close()
		return nil, fmt.Errorf("%w: dialled %s, the remote is %s", transport.ErrWrongPeer, p, sess.RemotePeer())
	}
	if ps, ok := sess.(security.PathSetter); ok && ps.Path() != security.Path(circ) {
		// The session runs elsewhere (a direct dial won): the circuit
		// carries nothing.
		circ.Close()
	}
	c, _, err := t.connFor(sess, nil)
	return c, err
}
