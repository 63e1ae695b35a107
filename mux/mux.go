// Package mux defines how go-ipv8 turns a secure datagram session into a
// transport.Conn: reliable, ordered, flow-controlled streams plus unreliable
// datagrams, multiplexed over one security.Session. The implementation lives
// in mux/reliable (a user-space reliable transport with loss recovery,
// congestion control and path measurement); transports compose a Muxer by
// this interface so that they never import the implementation.
package mux

import (
	"github.com/ipv8/go-ipv8/security"
	"github.com/ipv8/go-ipv8/transport"
)

// Muxer runs connections over established sessions. One Muxer serves every
// session of a port from a single event loop, so an idle connection costs a
// small struct and no goroutine.
type Muxer interface {
	// NewConn runs a connection over an established session; initiator
	// says which side dialled (it decides which stream IDs each side
	// opens). The Conn owns the session from then on: closing the Conn
	// closes the session, and the session ending ends the Conn.
	NewConn(sess security.Session, initiator bool) (transport.Conn, error)
	// Close closes every Conn of the Muxer and stops its event loop.
	Close() error
}

// BatchSender is an optional interface of a security.Session: a session
// that can send several payloads with one system call (sendmmsg) implements
// it, and the Muxer then hands it every packet a connection has ready at
// once instead of calling Send for each. Like Send, it does not keep the
// slices. It returns how many payloads were sent; on an error the rest were
// not sent.
type BatchSender interface {
	SendBatch(payloads [][]byte) (int, error)
}

// PathKinder is an optional interface of a security.Session that knows
// whether its packets currently go straight to the peer or through a
// relay; Conns report it in Stats.Path (direct when the session does not
// say).
type PathKinder interface {
	PathKind() transport.PathKind
}
