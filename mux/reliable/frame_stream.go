package reliable

// STREAM (type 0x10, 0x11 with FIN) carries stream data at an offset:
//
//	type | stream ID | offset | length | data
//
// The FIN bit says the stream's data ends at offset+length.
type streamFrame struct {
	id     uint64
	offset uint64
	data   []byte
	fin    bool
}

func (f *streamFrame) append(b []byte) []byte {
	t := byte(typeStream)
	if f.fin {
		t |= finBit
	}
	b = append(b, t)
	b = appendVarint(b, f.id)
	b = appendVarint(b, f.offset)
	b = appendVarint(b, uint64(len(f.data)))
	return append(b, f.data...)
}

// streamFrameOverhead is the size of a STREAM frame without its data.
func streamFrameOverhead(id, offset uint64, n int) int {
	return 1 + varintLen(id) + varintLen(offset) + varintLen(uint64(n))
}

func parseStreamFrame(b []byte) (streamFrame, int, error) {
	r := reader{b: b}
	t := r.byte("type")
	if t&^finBit != typeStream {
		return streamFrame{}, 0, invalid("not a STREAM frame")
	}
	f := streamFrame{fin: t&finBit != 0, id: r.varint("stream ID"), offset: r.varint("offset")}
	f.data = r.bytes(r.varint("length"), "stream data")
	if r.err != nil {
		return streamFrame{}, 0, r.err
	}
	if f.offset+uint64(len(f.data)) > maxVarint {
		return streamFrame{}, 0, invalid("stream data beyond 2^62")
	}
	return f, r.off, nil
}
