package reliable

import "time"

// ACK_FREQUENCY (type 0x03) lets the sender, which knows its congestion
// window and RTT, tell the receiver how often to acknowledge:
//
//	type | sequence | packet threshold | max ack delay (µs)
//
// The receiver acknowledges after threshold ack-eliciting packets or after
// the delay, whichever comes first, and at once when packets arrive out of
// order. Frames with a sequence number not above the last one applied are
// ignored (they were reordered or retransmitted).
type ackFrequencyFrame struct {
	seq         uint64
	threshold   uint64
	maxAckDelay time.Duration
}

// Bounds a receiver enforces on what the sender asks.
const (
	maxAckThreshold = 256
	maxAckDelayCap  = 100 * time.Millisecond
)

func (f ackFrequencyFrame) append(b []byte) []byte {
	b = append(b, typeAckFrequency)
	b = appendVarint(b, f.seq)
	b = appendVarint(b, f.threshold)
	return appendVarint(b, uint64(f.maxAckDelay/time.Microsecond))
}

func (f ackFrequencyFrame) length() int {
	return 1 + varintLen(f.seq) + varintLen(f.threshold) + varintLen(uint64(f.maxAckDelay/time.Microsecond))
}

func parseAckFrequencyFrame(b []byte) (ackFrequencyFrame, int, error) {
	r := reader{b: b}
	if r.byte("type") != typeAckFrequency {
		return ackFrequencyFrame{}, 0, invalid("not an ACK_FREQUENCY frame")
	}
	f := ackFrequencyFrame{seq: r.varint("sequence"), threshold: r.varint("threshold")}
	d := r.varint("max ack delay")
	if r.err != nil {
		return ackFrequencyFrame{}, 0, r.err
	}
	if f.threshold == 0 || f.threshold > maxAckThreshold {
		return ackFrequencyFrame{}, 0, invalid("ack threshold %d not in 1..%d", f.threshold, maxAckThreshold)
	}
	if d > uint64(maxAckDelayCap/time.Microsecond) {
		return ackFrequencyFrame{}, 0, invalid("max ack delay %dµs above %v", d, maxAckDelayCap)
	}
	f.maxAckDelay = time.Duration(d) * time.Microsecond
	return f, r.off, nil
}
