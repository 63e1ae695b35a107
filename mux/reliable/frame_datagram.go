package reliable

// DATAGRAM (type 0x09) carries one unreliable message, never retransmitted:
//
//	type | length | data
type datagramFrame struct{ data []byte }

func (f datagramFrame) append(b []byte) []byte {
	b = appendVarint(append(b, typeDatagram), uint64(len(f.data)))
	return append(b, f.data...)
}

func datagramFrameOverhead(n int) int { return 1 + varintLen(uint64(n)) }

func parseDatagramFrame(b []byte) (datagramFrame, int, error) {
	r := reader{b: b}
	if r.byte("type") != typeDatagram {
		return datagramFrame{}, 0, invalid("not a DATAGRAM frame")
	}
	f := datagramFrame{data: r.bytes(r.varint("length"), "datagram")}
	if r.err != nil {
		return datagramFrame{}, 0, r.err
	}
	return f, r.off, nil
}
