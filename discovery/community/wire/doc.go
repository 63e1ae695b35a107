// Package wire is the byte format of IPv8 community packets, byte for byte
// compatible with py-ipv8 3.2: the primitives of its serializer (Reader,
// Writer, and Marshal/Unmarshal for struct payloads, like py-ipv8's dataclass
// payloads), the packet framing (prefix, signed and unsigned messages), the
// discovery messages (introduction request/response, puncture request,
// puncture, in their IPv4 and IPv6-capable forms) and go-ipv8's capability
// advertisement carried in their extra bytes.
//
// Nothing here knows about peers, timers or sockets; discovery/community
// runs the protocol. Encoders append to a caller's buffer; decoders parse a
// slice, return values that may alias it, and reject malformed input with
// errors wrapping ErrMalformed. The format is specified in
// docs/protocol/community.md.
package wire
