// Package noise secures datagrams between two go-ipv8 peers with the Noise
// Protocol Framework: Noise_IK_25519_ChaChaPoly_BLAKE2s (ik.go) when the
// dialler knows the responder's peer ID (one round trip, and the first
// flight carries data), Noise_XX (through flynn/noise) when it knows only
// an address. It runs on the host's one UDP port (transport.Port) and
// implements security.SecureTransport.
//
// A packet's life is spread over files named for its steps, as in
// wireguard-go: the wire formats (packet_*.go, hello.go) apart from the
// logic; handshake.go (the Noise messages and the identity they bind),
// cookie.go (the stateless defence under load), receive.go (what happens to
// an incoming packet), send.go, replay.go (the sliding window), keypair.go,
// indextable.go (receiver index → keypair or handshake), session.go, and
// timers.go (every deadline of a session in one place). docs/protocol/noise.md
// specifies the packets and the state machine.
//
// A session belongs to a peer.ID, not an address: an authenticated packet
// from a new address moves it there without a new handshake, and the
// address is re-validated before more than three times the bytes received
// from it are sent there. Where a session's packets go is a Path, a small
// replaceable piece, so that a relay can carry them later.
package noise
