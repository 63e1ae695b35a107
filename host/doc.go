// Package host is the Host: what an application holds to reach peers by
// their public key. It dials by peer ID through the transports it was built
// with (address candidates from its peerstore), keeps one Conn per peer,
// routes inbound streams and datagram messages to the handlers registered by
// protocol.ID, runs identify on every connection, and reports connections
// and address changes on an event bus.
//
// A Host is built by the root package (ipv8.New), which wires the
// transports; host itself imports only interfaces.
package host
