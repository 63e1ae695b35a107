package reliable

// Variable-length integers as QUIC encodes them (RFC 9000 §16): the top two
// bits of the first byte give the length (1, 2, 4 or 8 bytes), the rest is
// the value, big-endian. Values up to 2^62-1.

const maxVarint = 1<<62 - 1

// varintLen is the encoded size of v (v ≤ maxVarint).
func varintLen(v uint64) int {
	switch {
	case v < 1<<6:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<30:
		return 4
	default:
		return 8
	}
}

// appendVarint appends v (v ≤ maxVarint; larger values are a bug of the caller).
func appendVarint(b []byte, v uint64) []byte {
	switch {
	case v < 1<<6:
		return append(b, byte(v))
	case v < 1<<14:
		return append(b, 0x40|byte(v>>8), byte(v))
	case v < 1<<30:
		return append(b, 0x80|byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	case v <= maxVarint:
		return append(b, 0xc0|byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
			byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	default:
		panic("reliable: varint out of range")
	}
}

// readVarint reads a varint from the front of b and returns it with the
// bytes consumed; n == 0 means b was too short.
func readVarint(b []byte) (v uint64, n int) {
	if len(b) == 0 {
		return 0, 0
	}
	l := 1 << (b[0] >> 6)
	if len(b) < l {
		return 0, 0
	}
	v = uint64(b[0] & 0x3f)
	for i := 1; i < l; i++ {
		v = v<<8 | uint64(b[i])
	}
	return v, l
}
