// Package protocols holds what the application protocols in its
// subpackages (ping, perf, identify) need of a host. A protocol package
// depends on this interface, not on package host, so it can be served by
// any host that opens and accepts streams by protocol ID.
package protocols

import (
	"context"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocol"
	"github.com/ipv8/go-ipv8/transport"
)

// Host is what a stream protocol needs of a host (host.Host satisfies it).
type Host interface {
	SetStreamHandler(p protocol.ID, f func(transport.Stream))
	NewStream(ctx context.Context, p peer.ID, protos ...protocol.ID) (transport.Stream, error)
}
