package reliable

// CLOSE (type 0x0a) ends the connection and says why:
//
//	type | error code | reason length | reason (UTF-8, at most 1024 bytes)
//
// The receiver fails every stream and operation with a
// *transport.ConnError carrying the code and reason, and sends nothing more.
type closeFrame struct {
	code   uint64
	reason []byte
}

const maxReasonLen = 1024

func (f closeFrame) append(b []byte) []byte {
	b = appendVarint(append(b, typeClose), f.code)
	b = appendVarint(b, uint64(len(f.reason)))
	return append(b, f.reason...)
}

func (f closeFrame) length() int {
	return 1 + varintLen(f.code) + varintLen(uint64(len(f.reason))) + len(f.reason)
}

func parseCloseFrame(b []byte) (closeFrame, int, error) {
	r := reader{b: b}
	if r.byte("type") != typeClose {
		return closeFrame{}, 0, invalid("not a CLOSE frame")
	}
	f := closeFrame{code: r.varint("error code")}
	n := r.varint("reason length")
	if r.err == nil && n > maxReasonLen {
		return closeFrame{}, 0, invalid("reason of %d bytes, at most %d", n, maxReasonLen)
	}
	f.reason = r.bytes(n, "reason")
	if r.err != nil {
		return closeFrame{}, 0, r.err
	}
	if f.code > 0xffffffff {
		return closeFrame{}, 0, invalid("error code %#x above 32 bits", f.code)
	}
	return f, r.off, nil
}
