// Package community runs IPv8 communities (py-ipv8's overlays) on a host's
// UDP port, wire-compatible with py-ipv8 3.2: an Endpoint routes the port's
// community packets to the Community their 20-byte ID names; a Community
// walks the overlay (RandomWalk or EdgeWalk), answers introduction requests
// by introducing a random peer and asking that peer to puncture its NAT
// towards the walker, keeps its verified peers fresh (churn), learns its
// public address from what peers report, and delivers application messages
// to handlers registered by message ID (Handle, Register).
//
// The verified peers (with their keys, peer.IDs and whether they accept
// go-ipv8 Noise sessions) and the neighbourhood graph are offered through
// the discovery package's interfaces, for the Host to dial and show.
//
// A Community is driven by events (packets in, its walk timer) on a
// clock.Clock, with no goroutine of its own, so the same code runs on the
// wall clock and on internal/netsim's virtual clock with thousands of hosts
// in one process. The byte format lives in the wire subpackage and is
// specified in docs/protocol/community.md.
package community
