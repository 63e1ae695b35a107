package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/ipv8/go-ipv8/peer"
)

// Packet framing constants.
const (
	PrefixByte  = 0x00
	Version     = 0x02
	IDSize      = 20
	HeaderSize  = 2 + IDSize + 1 // prefix, version, community ID, message ID
	TimeSize    = 8              // the global time of every message
	KeySize     = peer.LibNaCLPKSize
	SigSize     = peer.SignatureSize
	signedExtra = 2 + KeySize + TimeSize + SigSize // key length, key, time, signature

	// MinSigned is the size of a signed packet with an empty payload.
	MinSigned = HeaderSize + signedExtra
	// MinUnsigned is the size of an unsigned packet with an empty payload.
	MinUnsigned = HeaderSize + TimeSize

	// FirstReserved is the lowest message ID the protocol reserves for
	// itself (231–255); applications use 0–230.
	FirstReserved = 231
)

// Errors a caller may branch on.
var (
	// ErrUnsupportedKey: a signed packet carries a public key that is not a
	// 74-byte LibNaCLPK (py-ipv8's legacy M2Crypto EC keys are refused).
	ErrUnsupportedKey = fmt.Errorf("%w: public key is not LibNaCLPK", ErrMalformed)
	// ErrBadSignature: the signature does not verify.
	ErrBadSignature = errors.New("wire: bad signature")
	// ErrNotCommunity: the bytes do not start with 0x00 0x02.
	ErrNotCommunity = fmt.Errorf("%w: not a community packet", ErrMalformed)
)

// CommunityID names a community (py-ipv8's community_id): 20 bytes.
type CommunityID [IDSize]byte

// ParseCommunityID reads 40 hex digits.
func ParseCommunityID(s string) (CommunityID, error) {
	var id CommunityID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != IDSize {
		return id, fmt.Errorf("wire: community ID %q is not %d hex bytes", s, IDSize)
	}
	copy(id[:], b)
	return id, nil
}

// String returns the ID in hex.
func (c CommunityID) String() string { return hex.EncodeToString(c[:]) }

// Prefix returns the 22 bytes every packet of the community starts with.
func (c CommunityID) Prefix() []byte {
	return append([]byte{PrefixByte, Version}, c[:]...)
}

// PeekHeader reads the community ID and message ID of a packet.
func PeekHeader(pkt []byte) (CommunityID, byte, error) {
	var id CommunityID
	if len(pkt) < HeaderSize {
		return id, 0, fmt.Errorf("%w: %d-byte packet", ErrShort, len(pkt))
	}
	if pkt[0] != PrefixByte || pkt[1] != Version {
		return id, 0, ErrNotCommunity
	}
	copy(id[:], pkt[2:2+IDSize])
	return id, pkt[HeaderSize-1], nil
}

// AppendHeader appends the 23-byte header.
func AppendHeader(b []byte, c CommunityID, msgID byte) []byte {
	b = append(b, PrefixByte, Version)
	b = append(b, c[:]...)
	return append(b, msgID)
}

// Signer signs packets with one identity; it keeps the LibNaCLPK form of
// the key that every signed packet carries. (The key itself keeps its
// expanded Ed25519 secret: see peer.PrivateKey.AppendSign.)
type Signer struct {
	key *peer.PrivateKey
	bin []byte
}

// NewSigner returns a Signer for k.
func NewSigner(k *peer.PrivateKey) *Signer {
	return &Signer{key: k, bin: k.Public().MarshalLibNaCLPK()}
}

// Key returns the identity.
func (s *Signer) Key() *peer.PrivateKey { return s.key }

// KeyBin returns the LibNaCLPK form of the public key (do not modify).
func (s *Signer) KeyBin() []byte { return s.bin }

// AppendSignedHead appends the header, the public key and the global time
// of a signed message; the caller appends the payload and then calls Seal
// with the offset of the header.
func (s *Signer) AppendSignedHead(b []byte, c CommunityID, msgID byte, globalTime uint64) []byte {
	b = AppendHeader(b, c, msgID)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.bin)))
	b = append(b, s.bin...)
	return binary.BigEndian.AppendUint64(b, globalTime)
}

// Seal appends the Ed25519 signature of b[start:] (RFC 8032, the same
// bytes as crypto/ed25519.Sign).
func (s *Signer) Seal(b []byte, start int) []byte { return s.key.AppendSign(b, b[start:]) }

// AppendSigned appends a whole signed message.
func (s *Signer) AppendSigned(b []byte, c CommunityID, msgID byte, globalTime uint64, payload []byte) []byte {
	start := len(b)
	b = s.AppendSignedHead(b, c, msgID, globalTime)
	b = append(b, payload...)
	return s.Seal(b, start)
}

// AppendUnsignedHead appends the header and global time of an unsigned
// message; the payload follows.
func AppendUnsignedHead(b []byte, c CommunityID, msgID byte, globalTime uint64) []byte {
	b = AppendHeader(b, c, msgID)
	return binary.BigEndian.AppendUint64(b, globalTime)
}

// AppendUnsigned appends a whole unsigned message.
func AppendUnsigned(b []byte, c CommunityID, msgID byte, globalTime uint64, payload []byte) []byte {
	return append(AppendUnsignedHead(b, c, msgID, globalTime), payload...)
}

// Signed is a parsed signed message. Its slices alias the packet.
type Signed struct {
	Community  CommunityID
	MsgID      byte
	KeyBin     []byte // the sender's LibNaCLPK public key
	GlobalTime uint64
	Payload    []byte
	Signature  []byte
	signed     []byte // everything the signature covers
}

// ParseSigned reads the framing of a signed message; it does not verify the
// signature (see Verify).
func ParseSigned(pkt []byte) (Signed, error) {
	var s Signed
	var err error
	if s.Community, s.MsgID, err = PeekHeader(pkt); err != nil {
		return s, err
	}
	if len(pkt) >= HeaderSize+2 {
		if n := int(binary.BigEndian.Uint16(pkt[HeaderSize:])); n != KeySize {
			return s, fmt.Errorf("%w (%d-byte key)", ErrUnsupportedKey, n)
		}
	}
	if len(pkt) < MinSigned {
		return s, fmt.Errorf("%w: %d-byte signed packet (minimum %d)", ErrShort, len(pkt), MinSigned)
	}
	key := pkt[HeaderSize+2 : HeaderSize+2+KeySize]
	if !bytes.HasPrefix(key, []byte("LibNaCLPK:")) {
		return s, ErrUnsupportedKey
	}
	s.KeyBin = key
	off := HeaderSize + 2 + KeySize
	s.GlobalTime = binary.BigEndian.Uint64(pkt[off:])
	off += TimeSize
	end := len(pkt) - SigSize
	s.Payload = pkt[off:end:end]
	s.Signature = pkt[end:]
	s.signed = pkt[:end]
	return s, nil
}

// SignedBytes returns the bytes the signature covers.
func (s *Signed) SignedBytes() []byte { return s.signed }

// Verify checks the signature against pub (the parsed KeyBin).
func (s *Signed) Verify(pub *peer.PublicKey) error {
	if !pub.Verify(s.signed, s.Signature) {
		return ErrBadSignature
	}
	return nil
}

// Unsigned is a parsed unsigned message. Payload aliases the packet.
type Unsigned struct {
	Community  CommunityID
	MsgID      byte
	GlobalTime uint64
	Payload    []byte
}

// ParseUnsigned reads the framing of an unsigned message.
func ParseUnsigned(pkt []byte) (Unsigned, error) {
	var u Unsigned
	var err error
	if u.Community, u.MsgID, err = PeekHeader(pkt); err != nil {
		return u, err
	}
	if len(pkt) < MinUnsigned {
		return u, fmt.Errorf("%w: %d-byte unsigned packet (minimum %d)", ErrShort, len(pkt), MinUnsigned)
	}
	u.GlobalTime = binary.BigEndian.Uint64(pkt[HeaderSize:])
	u.Payload = pkt[MinUnsigned:]
	return u, nil
}
