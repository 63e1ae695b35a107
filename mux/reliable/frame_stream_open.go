package reliable

import "github.com/ipv8/go-ipv8/protocol"

// STREAM_OPEN (type 0x12, 0x13 with FIN) is the stream's SYN: a STREAM frame
// that also names the protocol, so the first data rides with the opening
// and selecting the protocol costs no round trip:
//
//	type | stream ID | protocol length (1 byte, 1..255) | protocol | offset | length | data
//
// The opener sends every data frame of a new stream in this form until one
// of them is acknowledged (that ACK is the SYN-ACK), so whichever arrives
// first opens the stream with its protocol. A receiver that does not serve
// the protocol answers with RESET_STREAM code 0x1.
type streamOpenFrame struct {
	streamFrame
	protocol []byte
}

func (f *streamOpenFrame) append(b []byte) []byte {
	t := byte(typeStreamOpen)
	if f.fin {
		t |= finBit
	}
	b = append(b, t)
	b = appendVarint(b, f.id)
	b = append(b, byte(len(f.protocol)))
	b = append(b, f.protocol...)
	b = appendVarint(b, f.offset)
	b = appendVarint(b, uint64(len(f.data)))
	return append(b, f.data...)
}

func streamOpenFrameOverhead(id uint64, proto protocol.ID, offset uint64, n int) int {
	return streamFrameOverhead(id, offset, n) + 1 + len(proto)
}

func parseStreamOpenFrame(b []byte) (streamOpenFrame, int, error) {
	r := reader{b: b}
	t := r.byte("type")
	if t&^finBit != typeStreamOpen {
		return streamOpenFrame{}, 0, invalid("not a STREAM_OPEN frame")
	}
	var f streamOpenFrame
	f.fin = t&finBit != 0
	f.id = r.varint("stream ID")
	plen := r.byte("protocol length")
	f.protocol = r.bytes(uint64(plen), "protocol")
	f.offset = r.varint("offset")
	f.data = r.bytes(r.varint("length"), "stream data")
	if r.err != nil {
		return streamOpenFrame{}, 0, r.err
	}
	if plen == 0 {
		return streamOpenFrame{}, 0, invalid("empty protocol ID")
	}
	if f.offset+uint64(len(f.data)) > maxVarint {
		return streamOpenFrame{}, 0, invalid("stream data beyond 2^62")
	}
	return f, r.off, nil
}
