// Package identify tells a connected peer who this host is: its public key,
// the addresses it listens on, the protocols it serves, its agent version,
// and the address the peer is seen at (which is how a host behind a NAT
// learns its public address). The message is libp2p's Identify protobuf,
// length-prefixed, under libp2p's protocol ID, so go-libp2p peers read it.
package identify

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/protocol"
)

// ID is the identify protocol (the peer that opens the stream receives).
const ID protocol.ID = "/ipfs/id/1.0.0"

// ProtocolVersion is what go-ipv8 hosts announce.
const ProtocolVersion = "ipv8/1.0.0"

// MaxMessageSize bounds an Identify message on the wire.
const MaxMessageSize = 8 << 10

// Limits on the lists inside one message.
const (
	maxAddrs     = 64
	maxProtocols = 256
)

// ErrBadMessage is returned for an Identify message that cannot be decoded.
var ErrBadMessage = errors.New("identify: malformed message")

// Info is what a host tells about itself.
type Info struct {
	// PublicKey is the libp2p protobuf encoding of the Ed25519 identity key.
	PublicKey       []byte
	ListenAddrs     []ma.Multiaddr
	Protocols       []protocol.ID
	ObservedAddr    ma.Multiaddr
	ProtocolVersion string
	AgentVersion    string
}

// Field numbers of libp2p's Identify message.
const (
	fieldProtocolVersion = 5
	fieldAgentVersion    = 6
	fieldPublicKey       = 1
	fieldListenAddrs     = 2
	fieldObservedAddr    = 4
	fieldProtocols       = 3
)

// Append appends the protobuf encoding of info to b.
func (info *Info) Append(b []byte) []byte {
	if info.ProtocolVersion != "" {
		b = protowire.AppendTag(b, fieldProtocolVersion, protowire.BytesType)
		b = protowire.AppendString(b, info.ProtocolVersion)
	}
	if info.AgentVersion != "" {
		b = protowire.AppendTag(b, fieldAgentVersion, protowire.BytesType)
		b = protowire.AppendString(b, info.AgentVersion)
	}
	if len(info.PublicKey) > 0 {
		b = protowire.AppendTag(b, fieldPublicKey, protowire.BytesType)
		b = protowire.AppendBytes(b, info.PublicKey)
	}
	for _, a := range info.ListenAddrs {
		b = protowire.AppendTag(b, fieldListenAddrs, protowire.BytesType)
		b = protowire.AppendBytes(b, a.Bytes())
	}
	if len(info.ObservedAddr) > 0 {
		b = protowire.AppendTag(b, fieldObservedAddr, protowire.BytesType)
		b = protowire.AppendBytes(b, info.ObservedAddr.Bytes())
	}
	for _, p := range info.Protocols {
		b = protowire.AppendTag(b, fieldProtocols, protowire.BytesType)
		b = protowire.AppendString(b, string(p))
	}
	return b
}

// Parse decodes an Identify message. Unknown fields are skipped; addresses
// that do not parse are dropped (a peer may speak transports we do not).
func Parse(b []byte) (*Info, error) {
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadMessage, len(b))
	}
	info := &Info{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("%w: bad tag", ErrBadMessage)
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, fmt.Errorf("%w: bad field %d", ErrBadMessage, num)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, fmt.Errorf("%w: bad length of field %d", ErrBadMessage, num)
		}
		b = b[n:]
		switch num {
		case fieldProtocolVersion:
			info.ProtocolVersion = string(v)
		case fieldAgentVersion:
			info.AgentVersion = string(v)
		case fieldPublicKey:
			info.PublicKey = append([]byte(nil), v...)
		case fieldListenAddrs:
			if len(info.ListenAddrs) >= maxAddrs {
				return nil, fmt.Errorf("%w: more than %d addresses", ErrBadMessage, maxAddrs)
			}
			if a, err := ma.NewMultiaddrBytes(v); err == nil {
				info.ListenAddrs = append(info.ListenAddrs, a)
			}
		case fieldObservedAddr:
			if a, err := ma.NewMultiaddrBytes(v); err == nil {
				info.ObservedAddr = a
			}
		case fieldProtocols:
			if len(info.Protocols) >= maxProtocols {
				return nil, fmt.Errorf("%w: more than %d protocols", ErrBadMessage, maxProtocols)
			}
			p := protocol.ID(v)
			if p.Validate() == nil {
				info.Protocols = append(info.Protocols, p)
			}
		}
	}
	return info, nil
}

// PeerID returns the ID of the key in the message.
func (info *Info) PeerID() (peer.ID, error) {
	ed, err := peer.UnmarshalLibp2pPublicKey(info.PublicKey)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	return peer.IDFromEd25519(ed), nil
}

// Write sends info as one uvarint-length-prefixed message.
func Write(w io.Writer, info *Info) error {
	body := info.Append(nil)
	if len(body) > MaxMessageSize {
		return fmt.Errorf("identify: message of %d bytes exceeds %d", len(body), MaxMessageSize)
	}
	msg := binary.AppendUvarint(make([]byte, 0, len(body)+3), uint64(len(body)))
	_, err := w.Write(append(msg, body...))
	return err
}

// Read reads one length-prefixed Identify message.
func Read(r io.Reader) (*Info, error) {
	br, ok := r.(io.ByteReader)
	if !ok {
		b := bufio.NewReaderSize(r, 16)
		br, r = b, b
	}
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, fmt.Errorf("identify: reading length: %w", err)
	}
	if n > MaxMessageSize {
		return nil, fmt.Errorf("%w: announced %d bytes", ErrBadMessage, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("identify: reading message: %w", err)
	}
	return Parse(body)
}
