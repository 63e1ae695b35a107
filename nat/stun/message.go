package stun

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"

	pion "github.com/pion/stun/v3"
)

// maxMessage bounds the STUN messages this package reads or writes: a
// Binding request or response with the attributes used here fits in far less.
const maxMessage = 1280

// Request is a Binding request as this package sends or receives it.
type Request struct {
	TxID [12]byte
	// Change asks the server to answer from its other IP and/or port.
	Change Change
	// ResponsePort, when not 0, asks the server to answer to this port of
	// the request's source IP (RFC 5780 §7.5).
	ResponsePort uint16
	// Unknown lists comprehension-required attributes this package does
	// not understand (a server answers 420 listing them).
	Unknown []uint16
}

// NewTxID returns a random transaction ID.
func NewTxID() (id [12]byte) {
	_, _ = rand.Read(id[:])
	return id
}

// Append appends the encoded request (with FINGERPRINT) to b.
func (r Request) Append(b []byte) []byte {
	m := pion.New()
	m.SetType(pion.BindingRequest)
	m.TransactionID = r.TxID
	m.WriteHeader()
	if r.Change != 0 {
		m.Add(attrChangeRequest, AppendChangeRequest(nil, r.Change))
	}
	if r.ResponsePort != 0 {
		m.Add(attrResponsePort, AppendResponsePort(nil, r.ResponsePort))
	}
	_ = pion.Fingerprint.AddTo(m)
	return append(b, m.Raw...)
}

// decode frames b with pion and checks what pion leaves to the caller: the
// length matches the datagram, and it is a Binding message.
func decode(b []byte) (*pion.Message, error) {
	if len(b) < 20 || len(b) > maxMessage {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	if b[0]&0xC0 != 0 || int(binary.BigEndian.Uint16(b[2:]))+20 != len(b) || len(b)%4 != 0 {
		return nil, fmt.Errorf("%w: bad header", ErrMalformed)
	}
	m := new(pion.Message)
	if err := pion.Decode(b, m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if m.Type.Method != pion.MethodBinding {
		return nil, fmt.Errorf("%w: method %s", ErrNotBinding, m.Type.Method)
	}
	if _, err := m.Get(pion.AttrFingerprint); err == nil {
		if err := pion.Fingerprint.Check(m); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	}
	return m, nil
}

// ParseRequest decodes a Binding request. Attributes it does not know that
// are comprehension-required (type < 0x8000) are listed in Unknown, not an
// error, so that a server can answer 420.
func ParseRequest(b []byte) (Request, error) {
	m, err := decode(b)
	if err != nil {
		return Request{}, err
	}
	if m.Type.Class != pion.ClassRequest {
		return Request{}, fmt.Errorf("%w: class %s, want request", ErrNotBinding, m.Type.Class)
	}
	r := Request{TxID: m.TransactionID}
	for _, a := range m.Attributes {
		switch t := uint16(a.Type); t {
		case attrChangeRequest:
			if r.Change, err = ParseChangeRequest(a.Value); err != nil {
				return Request{}, err
			}
		case attrResponsePort:
			if r.ResponsePort, err = ParseResponsePort(a.Value); err != nil {
				return Request{}, err
			}
		case attrPadding, attrFingerprint, attrSoftware:
		default:
			if t < 0x8000 && len(r.Unknown) < 8 {
				r.Unknown = append(r.Unknown, t)
			}
		}
	}
	return r, nil
}

// Response is a Binding success or error response.
type Response struct {
	TxID [12]byte
	// Error is the ERROR-CODE of an error response (0 for success), and
	// Reason its text.
	Error  int
	Reason string
	// Unknown is the UNKNOWN-ATTRIBUTES of a 420 error.
	Unknown []uint16
	// Mapped is the XOR-MAPPED-ADDRESS (or, from an RFC 3489 server,
	// MAPPED-ADDRESS): the request's source as the server saw it.
	Mapped netip.AddrPort
	// Other is OTHER-ADDRESS (or CHANGED-ADDRESS): the server's alternate
	// IP and port; zero when the server has none.
	Other netip.AddrPort
	// Origin is RESPONSE-ORIGIN (or SOURCE-ADDRESS): where the server says
	// it sent the response from.
	Origin netip.AddrPort
	// Software is the server's SOFTWARE, if any.
	Software string
}

// ParseResponse decodes a Binding success or error response. A success
// response without a mapped address is an error.
func ParseResponse(b []byte) (Response, error) {
	m, err := decode(b)
	if err != nil {
		return Response{}, err
	}
	if m.Type.Class != pion.ClassSuccessResponse && m.Type.Class != pion.ClassErrorResponse {
		return Response{}, fmt.Errorf("%w: class %s, want a response", ErrNotBinding, m.Type.Class)
	}
	r := Response{TxID: m.TransactionID}
	var mapped, xorMapped, other, changed, origin, source netip.AddrPort
	for _, a := range m.Attributes {
		var dst *netip.AddrPort
		xor := false
		switch uint16(a.Type) {
		case attrXORMappedAddress:
			dst, xor = &xorMapped, true
		case attrMappedAddress:
			dst = &mapped
		case attrOtherAddress:
			dst = &other
		case attrChangedAddress:
			dst = &changed
		case attrResponseOrigin:
			dst = &origin
		case attrSourceAddress:
			dst = &source
		case attrErrorCode:
			if len(a.Value) < 4 || len(a.Value) > 4+763 {
				return Response{}, fmt.Errorf("%w: ERROR-CODE of %d bytes", ErrMalformed, len(a.Value))
			}
			class, num := int(a.Value[2]&0x07), int(a.Value[3])
			if class < 3 || class > 6 || num > 99 {
				return Response{}, fmt.Errorf("%w: ERROR-CODE %d%02d", ErrMalformed, class, num)
			}
			r.Error, r.Reason = class*100+num, string(a.Value[4:])
		case attrUnknownAttrs:
			if len(a.Value)%2 != 0 {
				return Response{}, fmt.Errorf("%w: UNKNOWN-ATTRIBUTES of %d bytes", ErrMalformed, len(a.Value))
			}
			for i := 0; i+1 < len(a.Value) && len(r.Unknown) < 16; i += 2 {
				r.Unknown = append(r.Unknown, binary.BigEndian.Uint16(a.Value[i:]))
			}
		case attrSoftware:
			if len(a.Value) <= 763 {
				r.Software = string(a.Value)
			}
		}
		if dst != nil {
			if *dst, err = parseAddress(a.Value, xor, r.TxID); err != nil {
				return Response{}, fmt.Errorf("%v (attribute %#04x)", err, uint16(a.Type))
			}
		}
	}
	r.Mapped = firstValid(xorMapped, mapped)
	r.Other = firstValid(other, changed)
	r.Origin = firstValid(origin, source)
	if m.Type.Class == pion.ClassErrorResponse {
		if r.Error == 0 {
			return Response{}, fmt.Errorf("%w: error response without ERROR-CODE", ErrMalformed)
		}
		return r, nil
	}
	if r.Error != 0 {
		return Response{}, fmt.Errorf("%w: success response with ERROR-CODE", ErrMalformed)
	}
	if !r.Mapped.IsValid() {
		return Response{}, fmt.Errorf("%w: success response without a mapped address", ErrMalformed)
	}
	return r, nil
}

func firstValid(a ...netip.AddrPort) netip.AddrPort {
	for _, x := range a {
		if x.IsValid() {
			return x
		}
	}
	return netip.AddrPort{}
}

// response is what a server puts into a Binding response.
type response struct {
	txid   [12]byte
	mapped netip.AddrPort // the request's source
	origin netip.AddrPort // where the response leaves from (omitted when unspecified)
	other  netip.AddrPort // the alternate address (omitted when zero)
}

// appendSuccess appends a Binding success response to b.
func appendSuccess(b []byte, r response, software string) []byte {
	m := pion.New()
	m.SetType(pion.BindingSuccess)
	m.TransactionID = r.txid
	m.WriteHeader()
	m.Add(attrXORMappedAddress, appendAddress(nil, r.mapped, true, r.txid))
	m.Add(attrMappedAddress, appendAddress(nil, r.mapped, false, r.txid))
	if r.origin.IsValid() && !r.origin.Addr().IsUnspecified() {
		m.Add(attrResponseOrigin, appendAddress(nil, r.origin, false, r.txid))
	}
	if r.other.IsValid() {
		m.Add(attrOtherAddress, appendAddress(nil, r.other, false, r.txid))
	}
	if software != "" {
		m.Add(attrSoftware, []byte(software))
	}
	_ = pion.Fingerprint.AddTo(m)
	return append(b, m.Raw...)
}

// appendError appends a Binding error response to b.
func appendError(b []byte, txid [12]byte, code int, reason string, unknown []uint16, software string) []byte {
	m := pion.New()
	m.SetType(pion.BindingError)
	m.TransactionID = txid
	m.WriteHeader()
	m.Add(attrErrorCode, append([]byte{0, 0, byte(code / 100), byte(code % 100)}, reason...))
	if len(unknown) > 0 {
		v := make([]byte, 0, 2*len(unknown))
		for _, t := range unknown {
			v = binary.BigEndian.AppendUint16(v, t)
		}
		m.Add(attrUnknownAttrs, v)
	}
	if software != "" {
		m.Add(attrSoftware, []byte(software))
	}
	_ = pion.Fingerprint.AddTo(m)
	return append(b, m.Raw...)
}

// IsSTUN reports whether b looks like a STUN message (first two bits zero,
// the magic cookie in place): the same test the host's port uses to steer it.
func IsSTUN(b []byte) bool {
	return len(b) >= 20 && b[0]&0xC0 == 0 && binary.BigEndian.Uint32(b[4:]) == magicCookie
}
