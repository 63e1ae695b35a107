// Package punch opens direct UDP paths between two peers behind NATs (hole
// punching), coordinated through a channel both reach — a relay circuit,
// or any path between them — on the model of libp2p's DCUtR: the
// initiator sends its candidate addresses and NAT traits (CONNECT), the
// responder answers with its own (REPLY), the initiator measures the RTT,
// sends the plan (SYNC) and starts half an RTT later, when the peer starts
// on receiving it. Both then send PROBEs to the other's addresses; a PROBE
// that arrives is answered (ACK) from where it came, and the initiator
// nominates the first pair that answered, so both use the same one.
//
// Choose picks the plan from both sides' traits (Observe learns them with
// STUN): Direct when neither NAT maps per destination or the easy side's
// filter lets in any port of the other's address; Predict when a NAT
// allocates ports sequentially (its next ports are probed); Birthday when
// one NAT maps per destination with random ports and the other is
// endpoint-independent with a strict filter (the hard side opens 256
// ports towards the easy side, which probes up to 1024 random ports of
// the hard side's address: ≈ 98 % success, Tailscale's birthday attack);
// None when both map per destination and are not both predictable — the
// relay (nat/relay) carries those pairs.
//
// Probes are budgeted (Budget: time, rate, birthday probes and sockets,
// prediction window), go only to addresses the peer advertised in the
// coordination or sent a probe of the attempt from, and are answered only
// when they carry the ID of a live attempt or punched path: a host that
// did not ask is never sprayed, and nobody is answered for packets it
// could forge without the coordination's ID.
//
// A punched Path is a path for a security/noise session (nat/pathsel moves
// a running session onto it); the Puncher keeps it alive with PINGs at the
// mapping's keepalive interval (nat.KeepaliveInterval) while it is idle.
// docs/protocol/nat.md specifies the packets.
package punch
