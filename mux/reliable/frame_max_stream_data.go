package reliable

// MAX_STREAM_DATA (type 0x07) raises one stream's flow-control limit: the
// highest offset the sender may send on it.
//
//	type | stream ID | maximum
type maxStreamDataFrame struct{ id, max uint64 }

func (f maxStreamDataFrame) append(b []byte) []byte {
	return appendVarint(appendVarint(append(b, typeMaxStreamData), f.id), f.max)
}

func (f maxStreamDataFrame) length() int { return 1 + varintLen(f.id) + varintLen(f.max) }

func parseMaxStreamDataFrame(b []byte) (maxStreamDataFrame, int, error) {
	r := reader{b: b}
	if r.byte("type") != typeMaxStreamData {
		return maxStreamDataFrame{}, 0, invalid("not a MAX_STREAM_DATA frame")
	}
	f := maxStreamDataFrame{id: r.varint("stream ID"), max: r.varint("maximum stream data")}
	if r.err != nil {
		return maxStreamDataFrame{}, 0, r.err
	}
	return f, r.off, nil
}
