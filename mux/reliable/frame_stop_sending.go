package reliable

// STOP_SENDING (type 0x05) says the receiver will read no more of a stream
// (CloseRead):
//
//	type | stream ID | error code
//
// The stream's sender stops, discards what it buffered, and its Write fails
// with a *transport.StreamError carrying the code.
type stopSendingFrame struct {
	id   uint64
	code uint64
}

func (f stopSendingFrame) append(b []byte) []byte {
	b = append(b, typeStopSending)
	b = appendVarint(b, f.id)
	return appendVarint(b, f.code)
}

func (f stopSendingFrame) length() int { return 1 + varintLen(f.id) + varintLen(f.code) }

func parseStopSendingFrame(b []byte) (stopSendingFrame, int, error) {
	r := reader{b: b}
	if r.byte("type") != typeStopSending {
		return stopSendingFrame{}, 0, invalid("not a STOP_SENDING frame")
	}
	f := stopSendingFrame{id: r.varint("stream ID"), code: r.varint("error code")}
	if r.err != nil {
		return stopSendingFrame{}, 0, r.err
	}
	if f.code > 0xffffffff {
		return stopSendingFrame{}, 0, invalid("error code %#x above 32 bits", f.code)
	}
	return f, r.off, nil
}
