package reliable

// MAX_STREAMS (type 0x08) raises how many streams the receiver of the frame
// may open in total over the connection's life (a cumulative count, so a
// reordered older frame never lowers it).
//
//	type | maximum streams
type maxStreamsFrame struct{ max uint64 }

// maxStreamCount bounds the count so that stream IDs stay varints.
const maxStreamCount = 1 << 60

func (f maxStreamsFrame) append(b []byte) []byte {
	return appendVarint(append(b, typeMaxStreams), f.max)
}

func (f maxStreamsFrame) length() int { return 1 + varintLen(f.max) }

func parseMaxStreamsFrame(b []byte) (maxStreamsFrame, int, error) {
	r := reader{b: b}
	if r.byte("type") != typeMaxStreams {
		return maxStreamsFrame{}, 0, invalid("not a MAX_STREAMS frame")
	}
	f := maxStreamsFrame{max: r.varint("maximum streams")}
	if r.err != nil {
		return maxStreamsFrame{}, 0, r.err
	}
	if f.max > maxStreamCount {
		return maxStreamsFrame{}, 0, invalid("stream count %d above 2^60", f.max)
	}
	return f, r.off, nil
}
