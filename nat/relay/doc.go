// Package relay carries datagrams between two peers that cannot reach each
// other directly, through a public host both reach: the last resort that
// makes every pair of peers connect, whatever their NATs.
//
// The model is libp2p's circuit relay v2. A peer behind a NAT holds a
// reservation at a relay (Endpoint.Reserve: signed with its identity key,
// over a cookie that proves its address); another peer opens a circuit to
// it through the relay (Endpoint.Connect, also signed); the target accepts
// (Endpoint.Accept). The relay bounds what it gives away — reservations in
// total and per IP, circuits in total, per peer and per IP, and each
// circuit's duration, bytes and idle time (Limits) — and says which limit
// a refusal hit.
//
// A Circuit is a path for a security/noise session: the session seals its
// packets, the circuit puts an 8-byte header in front and the relay
// forwards them unchanged, so the relay sees only ciphertext. When a hole
// punch later finds a direct path, the session moves there without a new
// handshake (nat/pathsel), and back to the circuit if the direct path
// dies.
//
// Everything runs on the host's one UDP port (transport.Port, packet type
// transport.TypeRelay): one Endpoint per port is a client, and with
// Config.Serve also a relay for others. docs/protocol/nat.md specifies the
// packets.
package relay
