package reliable

// MAX_DATA (type 0x06) raises the connection's flow-control limit: the
// total stream bytes (by highest offset, over all streams) the sender may
// send.
//
//	type | maximum
type maxDataFrame struct{ max uint64 }

func (f maxDataFrame) append(b []byte) []byte {
	return appendVarint(append(b, typeMaxData), f.max)
}

func (f maxDataFrame) length() int { return 1 + varintLen(f.max) }

func parseMaxDataFrame(b []byte) (maxDataFrame, int, error) {
	r := reader{b: b}
	if r.byte("type") != typeMaxData {
		return maxDataFrame{}, 0, invalid("not a MAX_DATA frame")
	}
	f := maxDataFrame{max: r.varint("maximum data")}
	if r.err != nil {
		return maxDataFrame{}, 0, r.err
	}
	return f, r.off, nil
}
