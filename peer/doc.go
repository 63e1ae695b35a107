// Package peer holds strong identities: Ed25519 identity keys, the X25519
// keys that Noise sessions use, the peer.ID derived from a public key (printed
// in libp2p's text form, 12D3KooW…), the IPv8 (py-ipv8) forms of a key and its
// mid, key files, and AddrInfo (an ID with its multiaddrs).
//
// A natively generated identity derives its X25519 key from its Ed25519 key
// (libsodium's ed25519→curve25519 conversion), so any peer's Noise static key
// can be computed from its peer.ID alone. An identity imported from py-ipv8
// keeps the X25519 key it came with.
package peer
