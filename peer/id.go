package peer

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/mr-tron/base58"
)

// ID identifies a peer: the identity multihash of the libp2p protobuf
// encoding of its Ed25519 public key. As a string it holds the raw multihash
// bytes; String prints the base58btc text form (12D3KooW…), which go-libp2p
// prints for the same key.
type ID string

// ErrInvalidID is returned for text or bytes that are not a peer ID this
// library can use.
var ErrInvalidID = errors.New("peer: invalid peer ID")

// libp2p's protobuf PublicKey{Type: Ed25519 (1), Data: 32 bytes}.
var ed25519ProtoPrefix = []byte{0x08, 0x01, 0x12, 0x20}

const (
	multihashIdentity = 0x00
	protoPubKeySize   = 4 + ed25519.PublicKeySize // 36
	idSize            = 2 + protoPubKeySize       // 38
)

// IDFromPublicKey derives the ID of a public key from its Ed25519 half.
func IDFromPublicKey(p *PublicKey) ID { return IDFromEd25519(p.ed) }

// IDFromEd25519 derives the ID of an Ed25519 public key.
func IDFromEd25519(pub ed25519.PublicKey) ID {
	b := make([]byte, 0, idSize)
	b = append(b, multihashIdentity, protoPubKeySize)
	b = append(b, MarshalLibp2pPublicKey(pub)...)
	return ID(b)
}

// MarshalLibp2pPublicKey returns libp2p's protobuf encoding of an Ed25519
// public key (as signed in libp2p's TLS extension and peer records).
func MarshalLibp2pPublicKey(pub ed25519.PublicKey) []byte {
	return append(append(make([]byte, 0, protoPubKeySize), ed25519ProtoPrefix...), pub...)
}

// UnmarshalLibp2pPublicKey reads libp2p's protobuf encoding of a public key;
// only Ed25519 keys are accepted.
func UnmarshalLibp2pPublicKey(b []byte) (ed25519.PublicKey, error) {
	if len(b) != protoPubKeySize || string(b[:4]) != string(ed25519ProtoPrefix) {
		return nil, fmt.Errorf("%w: not a libp2p Ed25519 public key", ErrInvalidKey)
	}
	return append(ed25519.PublicKey(nil), b[4:]...), nil
}

// IDFromBytes checks and converts raw multihash bytes to an ID.
func IDFromBytes(b []byte) (ID, error) {
	id := ID(b)
	if err := id.Validate(); err != nil {
		return "", err
	}
	return id, nil
}

// Decode parses the base58btc text form of an ID (12D3KooW…).
func Decode(s string) (ID, error) {
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidID)
	}
	b, err := base58.Decode(s)
	if err != nil {
		return "", fmt.Errorf("%w: %q is not base58btc", ErrInvalidID, s)
	}
	id, err := IDFromBytes(b)
	if err != nil {
		return "", fmt.Errorf("%w (%q)", err, s)
	}
	return id, nil
}

// Parse is Decode.
func Parse(s string) (ID, error) { return Decode(s) }

// Validate reports whether the ID embeds an Ed25519 key this library can
// use. (IDs of RSA or secp256k1 libp2p keys, which are SHA-256 multihashes,
// are refused.)
func (id ID) Validate() error {
	b := []byte(id)
	if len(b) != idSize || b[0] != multihashIdentity || b[1] != protoPubKeySize {
		return fmt.Errorf("%w: not an identity multihash of an Ed25519 key", ErrInvalidID)
	}
	if _, err := UnmarshalLibp2pPublicKey(b[2:]); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidID, err)
	}
	return nil
}

// Ed25519 extracts the Ed25519 public key embedded in the ID.
func (id ID) Ed25519() (ed25519.PublicKey, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	return ed25519.PublicKey([]byte(id)[6:]), nil
}

// PublicKey returns the native public identity of the ID (the X25519 half
// derived from the Ed25519 key). For identities imported from py-ipv8 the
// real X25519 key differs; it is learnt in the handshake.
func (id ID) PublicKey() (*PublicKey, error) {
	ed, err := id.Ed25519()
	if err != nil {
		return nil, err
	}
	return PublicKeyFromEd25519(ed)
}

// String returns the base58btc text form, or "<invalid>" style text for the
// empty ID.
func (id ID) String() string {
	if id == "" {
		return "<no peer>"
	}
	return base58.Encode([]byte(id))
}

// ShortString returns the last 6 characters of the text form, for logs.
func (id ID) ShortString() string {
	s := id.String()
	if len(s) <= 8 {
		return s
	}
	return "…" + s[len(s)-6:]
}

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := Decode(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// MarshalBinary returns the raw multihash bytes.
func (id ID) MarshalBinary() ([]byte, error) { return []byte(id), nil }

// UnmarshalBinary reads raw multihash bytes.
func (id *ID) UnmarshalBinary(b []byte) error {
	v, err := IDFromBytes(b)
	if err != nil {
		return err
	}
	*id = v
	return nil
}
