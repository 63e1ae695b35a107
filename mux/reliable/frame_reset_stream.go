package reliable

// RESET_STREAM (type 0x04) aborts a stream in both directions:
//
//	type | stream ID | error code | final size
//
// The final size is how many bytes the sender had sent on the stream, so
// the receiver can return that connection-level flow-control credit. The
// receiver's Read and Write fail with a *transport.StreamError carrying the code.
type resetStreamFrame struct {
	id        uint64
	code      uint64
	finalSize uint64
}

func (f resetStreamFrame) append(b []byte) []byte {
	b = append(b, typeResetStream)
	b = appendVarint(b, f.id)
	b = appendVarint(b, f.code)
	return appendVarint(b, f.finalSize)
}

func (f resetStreamFrame) length() int {
	return 1 + varintLen(f.id) + varintLen(f.code) + varintLen(f.finalSize)
}

func parseResetStreamFrame(b []byte) (resetStreamFrame, int, error) {
	r := reader{b: b}
	if r.byte("type") != typeResetStream {
		return resetStreamFrame{}, 0, invalid("not a RESET_STREAM frame")
	}
	f := resetStreamFrame{id: r.varint("stream ID"), code: r.varint("error code"), finalSize: r.varint("final size")}
	if r.err != nil {
		return resetStreamFrame{}, 0, r.err
	}
	if f.code > 0xffffffff {
		return resetStreamFrame{}, 0, invalid("error code %#x above 32 bits", f.code)
	}
	return f, r.off, nil
}
