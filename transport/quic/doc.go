// Package quic is go-ipv8's QUIC transport: quic-go on the QUIC socket of the
// host's shared UDP port, secured with libp2p's TLS 1.3 identity scheme so
// that a go-ipv8 host and a go-libp2p host can authenticate each other.
//
// Each side presents a self-signed certificate for an ephemeral ECDSA P-256
// key that carries, in the libp2p public key extension, the host's Ed25519
// identity key and that key's signature over the certificate's public key
// (identity.go). The dialler checks, inside the TLS handshake, that the
// certificate belongs to the peer it dialled, so no application data reaches
// an impostor.
//
// A stream names its protocol in a short header written together with the
// stream's first data (header.go), so selecting a protocol costs no round
// trip. Stream resets and connection closes carry transport.ErrorCode values
// as QUIC application error codes, and every quic-go error is mapped to the
// transport package's errors (errors.go). The wire format is specified in
// docs/protocol/quic.md.
package quic
