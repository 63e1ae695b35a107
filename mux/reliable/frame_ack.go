package reliable

import "time"

// ACK (type 0x02) acknowledges ranges of received packet numbers:
//
//	type | largest | ack delay (µs) | range count | first range | (gap | range length)*
//
// The first range covers [largest-firstRange, largest]. Each following
// range lies below the previous one: its largest is the previous smallest
// minus gap minus 2, its smallest is that largest minus range length (the
// QUIC encoding, RFC 9000 §19.3). The ack delay is how long the receiver
// held the largest packet before acknowledging it.

// maxAckRanges bounds the ranges of one ACK frame, sent or accepted.
const maxAckRanges = 64

// ackRange is an inclusive range of packet numbers.
type ackRange struct{ smallest, largest uint64 }

type ackFrame struct {
	ranges   []ackRange // descending, disjoint, non-adjacent
	ackDelay time.Duration
}

func (f *ackFrame) largest() uint64  { return f.ranges[0].largest }
func (f *ackFrame) smallest() uint64 { return f.ranges[len(f.ranges)-1].smallest }

// acks reports whether pn is in one of the frame's ranges.
func (f *ackFrame) acks(pn uint64) bool {
	for _, r := range f.ranges {
		if pn > r.largest {
			return false
		}
		if pn >= r.smallest {
			return true
		}
	}
	return false
}

func (f *ackFrame) append(b []byte) []byte {
	b = append(b, typeAck)
	b = appendVarint(b, f.ranges[0].largest)
	b = appendVarint(b, uint64(f.ackDelay/time.Microsecond))
	b = appendVarint(b, uint64(len(f.ranges)-1))
	b = appendVarint(b, f.ranges[0].largest-f.ranges[0].smallest)
	for i := 1; i < len(f.ranges); i++ {
		b = appendVarint(b, f.ranges[i-1].smallest-f.ranges[i].largest-2)
		b = appendVarint(b, f.ranges[i].largest-f.ranges[i].smallest)
	}
	return b
}

func (f *ackFrame) length() int {
	n := 1 + varintLen(f.ranges[0].largest) + varintLen(uint64(f.ackDelay/time.Microsecond)) +
		varintLen(uint64(len(f.ranges)-1)) + varintLen(f.ranges[0].largest-f.ranges[0].smallest)
	for i := 1; i < len(f.ranges); i++ {
		n += varintLen(f.ranges[i-1].smallest-f.ranges[i].largest-2) + varintLen(f.ranges[i].largest-f.ranges[i].smallest)
	}
	return n
}

// parseAckFrame reads an ACK frame into f, reusing f.ranges.
func parseAckFrame(b []byte, f *ackFrame) (int, error) {
	r := reader{b: b}
	if r.byte("type") != typeAck {
		return 0, invalid("not an ACK frame")
	}
	largest := r.varint("largest acknowledged")
	delay := r.varint("ack delay")
	count := r.varint("ack range count")
	first := r.varint("first ack range")
	if r.err != nil {
		return 0, r.err
	}
	if count >= maxAckRanges {
		return 0, invalid("%d ACK ranges, at most %d", count+1, maxAckRanges)
	}
	if first > largest {
		return 0, invalid("first ACK range %d below packet number 0", first)
	}
	if delay > uint64(time.Hour/time.Microsecond) {
		delay = uint64(time.Hour / time.Microsecond) // nonsense, but harmless once clamped
	}
	f.ackDelay = time.Duration(delay) * time.Microsecond
	f.ranges = append(f.ranges[:0], ackRange{smallest: largest - first, largest: largest})
	smallest := largest - first
	for i := uint64(0); i < count; i++ {
		gap := r.varint("ack gap")
		length := r.varint("ack range length")
		if r.err != nil {
			return 0, r.err
		}
		if smallest < gap+2 {
			return 0, invalid("ACK gap below packet number 0")
		}
		hi := smallest - gap - 2
		if length > hi {
			return 0, invalid("ACK range below packet number 0")
		}
		smallest = hi - length
		f.ranges = append(f.ranges, ackRange{smallest: smallest, largest: hi})
	}
	return r.off, nil
}
