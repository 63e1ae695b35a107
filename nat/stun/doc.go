// Package stun is go-ipv8's STUN (RFC 5389) on the host's one UDP port: an
// Endpoint answers Binding requests (so that peers use each other as STUN
// servers) and runs client transactions, from which Detect classifies the
// NAT's mapping and filtering behaviour by RFC 5780. Server is the
// two-address RFC 5780 server behind `ipv8 stun-server`.
//
// Messages are encoded and framed with pion/stun; the attributes pion does
// not parse (CHANGE-REQUEST, RESPONSE-PORT, and strict address decoding)
// are in attrs.go. The wire details are in docs/protocol/nat.md.
package stun
