// Package netsim is a deterministic virtual packet network that stands in
// for kernel UDP sockets in tests of the whole stack (QUIC, the Noise +
// reliable-stream transport, STUN and NAT detection, hole punching) and in
// large simulations (community random walks with 10 000 hosts).
//
// # Topology
//
// A Network holds hosts and NATs. A host created with Network.NewHost lives
// on the public "internet"; a host created with NAT.NewHost lives in that
// NAT's private realm; a NAT created with NAT.NewNAT sits behind another NAT
// (carrier-grade NAT: nesting is supported to any depth). Every host and NAT
// has one access Link. A packet's path is
//
//	sender's link (up) → its NATs, innermost first (each: translate, then its WAN link up)
//	→ the realm holding the destination address
//	→ the destination's NATs, outermost first (each: its WAN link down, then filter and translate)
//	→ receiver's link (down) → the receiving Conn
//
// so a packet from a public host A to a public host B pays A's latency plus
// B's latency, and RTT = 2·(A.Latency + B.Latency). Hosts behind one NAT
// share its WAN link (and so its bandwidth and its FIFO queue), and the
// conns of one host share the host's link. Hosts in the same private realm
// reach each other directly by private address (sender's up link, then the
// receiver's down link, no translation). A private address is not routable
// from outside its realm.
//
// # Links
//
// Each direction of a Link is an independent FIFO queue served at Bandwidth
// (UDP payload bytes per second; headers are free; DownBandwidth makes the
// link asymmetric) with a tail drop when the backlog would exceed
// QueueBytes. After leaving the queue a packet may be
// lost (Loss: it still used the link's capacity, like loss on a radio link),
// then it takes Latency plus a uniform random extra in [0, Jitter). Jitter
// never reorders: a packet never arrives before one that entered the same
// direction of the link before it. Reorder is the probability that a packet
// is held back an extra ReorderDelay (default 10 ms) outside that FIFO rule,
// so packets sent up to ReorderDelay after it overtake it. Duplicate is the
// probability that a copy arrives together with the packet. Packets larger
// than the MTU (Config.MTU, default 1452 bytes of UDP payload, what fits a
// 1500-byte IPv6 frame; a Link may set a smaller one) are dropped.
//
// # NATs
//
// NATConfig follows RFC 4787: mapping behaviour (endpoint-independent,
// address-dependent, address-and-port-dependent), filtering behaviour (the
// same three), port allocation (preserve, sequential, random), an idle
// mapping timeout refreshed by outbound (and optionally inbound) packets,
// and hairpinning. Filtering permissions belong to a mapping and live as
// long as it does. External ports come from 1024–65535; ports of mappings
// are never shared. A hairpinned packet is translated like any other
// (it arrives from the sender's external address) and then filtered.
//
// # Clocks
//
// In real-time mode (the default) one scheduler goroutine serves the whole
// network from a timer heap and Network.Clock is the wall clock. Its
// delays are as precise as Go's runtime timers, about a millisecond on an
// idle Linux process (more on a loaded machine); exact timing is what
// virtual mode is for. quic-go, which keeps its own wall-clock timers,
// needs real-time mode. With
// Config.Virtual nothing advances by itself: Network.RunFor and
// Network.RunUntil pop packet deliveries and Clock().AfterFunc timers in
// time order and run them on the caller's goroutine. In virtual mode
// packets reach a Conn through its SetHandler callback; Conn reads never
// block (they return queued packets or ErrWouldBlock).
//
// # Determinism
//
// All randomness (loss, jitter, reordering, duplication, NAT and ephemeral
// port choice) comes from the one Config.Seed: each link direction and each
// NAT draws from its own stream derived from the seed and its creation
// order. The same seed and the same sequence of operations give the same
// drops, delays and ports. In virtual mode that covers whole simulations; in
// real-time mode it holds for each link as long as the packets entering it
// keep their order (for example one sending goroutine).
//
// # Not modelled
//
// ICMP (no port-unreachable or packet-too-big messages: DropReason and
// Network.Stats say what happened instead), IP fragmentation, TTLs, per-flow
// fair queueing, and header bytes in bandwidth. IPv4 and IPv6 addresses can
// be mixed freely; an IPv4-mapped IPv6 destination is treated as IPv4.
//
// Delivery callbacks (SetHandler) and virtual timers run without any netsim
// lock held, one at a time; they may send, set timers and change the
// topology, but they must not block, since they hold up the whole network.
package netsim
