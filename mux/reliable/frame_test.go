package reliable

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestVarintRoundTripAtEveryLength(t *testing.T) {
	for _, v := range []uint64{0, 63, 64, 16383, 16384, 1<<30 - 1, 1 << 30, maxVarint} {
		b := appendVarint(nil, v)
		if len(b) != varintLen(v) {
			t.Fatalf("%d: encoded in %d bytes, varintLen says %d", v, len(b), varintLen(v))
		}
		got, n := readVarint(b)
		if got != v || n != len(b) {
			t.Fatalf("%d: read back %d (%d bytes)", v, got, n)
		}
		if _, n := readVarint(b[:len(b)-1]); n != 0 {
			t.Fatalf("%d: a truncated varint was accepted", v)
		}
	}
}

func TestPacketHeaderRoundTrip(t *testing.T) {
	for _, pn := range []uint64{0, 1, 1000, 1 << 40} {
		h := PacketHeader{PacketNumber: pn}
		b := h.Append([]byte{0xaa})[1:]
		if len(b) != h.Len() {
			t.Fatalf("Len %d, wrote %d", h.Len(), len(b))
		}
		got, n, err := ParsePacketHeader(append(b, 0x01))
		if err != nil || got != h || n != len(b) {
			t.Fatalf("pn %d: got %+v %d %v", pn, got, n, err)
		}
	}
	if _, _, err := ParsePacketHeader([]byte{9, 0}); !errors.Is(err, ErrBadVersion) {
		t.Fatalf("unknown version: %v", err)
	}
	if _, _, err := ParsePacketHeader([]byte{packetVersion}); !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated: %v", err)
	}
}

// frameCase is one frame with its encoder and a parser that returns the
// parsed frame (as any) and the bytes consumed.
type frameCase struct {
	name  string
	frame any
	enc   func() []byte
	parse func([]byte) (any, int, error)
}

func frameCases() []frameCase {
	ack := &ackFrame{ranges: []ackRange{{90, 100}, {50, 80}, {3, 3}, {0, 1}}, ackDelay: 1500 * time.Microsecond}
	so := streamOpenFrame{streamFrame: streamFrame{id: 4, offset: 0, data: []byte("hello"), fin: true}, protocol: []byte("/ipv8/ping/1")}
	sf := streamFrame{id: 7, offset: 1 << 33, data: bytes.Repeat([]byte{7}, 300)}
	return []frameCase{
		{"ping", struct{}{}, func() []byte { return appendPingFrame(nil) },
			func(b []byte) (any, int, error) { n, err := parsePingFrame(b); return struct{}{}, n, err }},
		{"ack", ack, func() []byte { return ack.append(nil) },
			func(b []byte) (any, int, error) { f := &ackFrame{}; n, err := parseAckFrame(b, f); return f, n, err }},
		{"ack_frequency", ackFrequencyFrame{seq: 3, threshold: 10, maxAckDelay: 5 * time.Millisecond},
			func() []byte {
				return ackFrequencyFrame{seq: 3, threshold: 10, maxAckDelay: 5 * time.Millisecond}.append(nil)
			},
			func(b []byte) (any, int, error) { return wrap3(parseAckFrequencyFrame(b)) }},
		{"stream", sf, func() []byte { return sf.append(nil) },
			func(b []byte) (any, int, error) { return wrap3(parseStreamFrame(b)) }},
		{"stream_open", so, func() []byte { return so.append(nil) },
			func(b []byte) (any, int, error) { return wrap3(parseStreamOpenFrame(b)) }},
		{"reset_stream", resetStreamFrame{id: 9, code: 0x101, finalSize: 12345},
			func() []byte { return resetStreamFrame{id: 9, code: 0x101, finalSize: 12345}.append(nil) },
			func(b []byte) (any, int, error) { return wrap3(parseResetStreamFrame(b)) }},
		{"stop_sending", stopSendingFrame{id: 9, code: 1},
			func() []byte { return stopSendingFrame{id: 9, code: 1}.append(nil) },
			func(b []byte) (any, int, error) { return wrap3(parseStopSendingFrame(b)) }},
		{"max_data", maxDataFrame{max: 1 << 40},
			func() []byte { return maxDataFrame{max: 1 << 40}.append(nil) },
			func(b []byte) (any, int, error) { return wrap3(parseMaxDataFrame(b)) }},
		{"max_stream_data", maxStreamDataFrame{id: 2, max: 99999},
			func() []byte { return maxStreamDataFrame{id: 2, max: 99999}.append(nil) },
			func(b []byte) (any, int, error) { return wrap3(parseMaxStreamDataFrame(b)) }},
		{"max_streams", maxStreamsFrame{max: 1024},
			func() []byte { return maxStreamsFrame{max: 1024}.append(nil) },
			func(b []byte) (any, int, error) { return wrap3(parseMaxStreamsFrame(b)) }},
		{"datagram", datagramFrame{data: []byte("unreliable")},
			func() []byte { return datagramFrame{data: []byte("unreliable")}.append(nil) },
			func(b []byte) (any, int, error) { return wrap3(parseDatagramFrame(b)) }},
		{"close", closeFrame{code: 0x100, reason: []byte("bye")},
			func() []byte { return closeFrame{code: 0x100, reason: []byte("bye")}.append(nil) },
			func(b []byte) (any, int, error) { return wrap3(parseCloseFrame(b)) }},
	}
}

func wrap3[T any](f T, n int, err error) (any, int, error) { return f, n, err }

func TestFramesRoundTrip(t *testing.T) {
	for _, tc := range frameCases() {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.enc()
			// A following frame must not be consumed.
			got, n, err := tc.parse(append(b, typePing))
			if err != nil {
				t.Fatal(err)
			}
			if n != len(b) {
				t.Fatalf("consumed %d of %d bytes", n, len(b))
			}
			if !reflect.DeepEqual(got, tc.frame) {
				t.Fatalf("parsed %+v, want %+v", got, tc.frame)
			}
			// Every truncation is rejected with ErrTruncated, never a panic.
			for i := 1; i < len(b); i++ {
				if _, _, err := tc.parse(b[:i]); !errors.Is(err, ErrTruncated) {
					t.Fatalf("truncated to %d bytes: err %v", i, err)
				}
			}
		})
	}
}

func TestFrameLengthsMatchEncoding(t *testing.T) {
	ack := &ackFrame{ranges: []ackRange{{90, 100}, {50, 80}, {3, 3}}, ackDelay: time.Millisecond}
	for name, x := range map[string]struct {
		n int
		b []byte
	}{
		"ack":             {ack.length(), ack.append(nil)},
		"ack_frequency":   {ackFrequencyFrame{seq: 70, threshold: 32, maxAckDelay: time.Second / 10}.length(), ackFrequencyFrame{seq: 70, threshold: 32, maxAckDelay: time.Second / 10}.append(nil)},
		"reset":           {resetStreamFrame{1, 2, 1 << 20}.length(), resetStreamFrame{1, 2, 1 << 20}.append(nil)},
		"stop":            {stopSendingFrame{1, 2}.length(), stopSendingFrame{1, 2}.append(nil)},
		"max_data":        {maxDataFrame{1 << 50}.length(), maxDataFrame{1 << 50}.append(nil)},
		"max_stream_data": {maxStreamDataFrame{100, 1 << 20}.length(), maxStreamDataFrame{100, 1 << 20}.append(nil)},
		"max_streams":     {maxStreamsFrame{100}.length(), maxStreamsFrame{100}.append(nil)},
		"close":           {closeFrame{5, []byte("x")}.length(), closeFrame{5, []byte("x")}.append(nil)},
	} {
		if x.n != len(x.b) {
			t.Errorf("%s: length() %d, encoded %d", name, x.n, len(x.b))
		}
	}
	sf := streamFrame{id: 3, offset: 70000, data: make([]byte, 1000)}
	if got := streamFrameOverhead(3, 70000, 1000) + 1000; got != len(sf.append(nil)) {
		t.Errorf("stream overhead %d, encoded %d", got, len(sf.append(nil)))
	}
}

func TestFrameParsersRejectInvalidValues(t *testing.T) {
	for name, tc := range map[string]struct {
		b     []byte
		parse func([]byte) error
	}{
		"ack range below zero": {[]byte{typeAck, 5, 0, 0, 6}, func(b []byte) error { _, err := parseAckFrame(b, &ackFrame{}); return err }},
		"ack gap below zero":   {[]byte{typeAck, 5, 0, 1, 0, 5, 0}, func(b []byte) error { _, err := parseAckFrame(b, &ackFrame{}); return err }},
		"too many ack ranges":  {appendVarint([]byte{typeAck, 5, 0}, maxAckRanges), func(b []byte) error { _, err := parseAckFrame(append(b, 0), &ackFrame{}); return err }},
		"ack threshold zero":   {[]byte{typeAckFrequency, 1, 0, 1}, func(b []byte) error { _, _, err := parseAckFrequencyFrame(b); return err }},
		"empty protocol":       {[]byte{typeStreamOpen, 0, 0, 0, 0}, func(b []byte) error { _, _, err := parseStreamOpenFrame(b); return err }},
		"reason too long":      {appendVarint([]byte{typeClose, 0}, maxReasonLen+1), func(b []byte) error { _, _, err := parseCloseFrame(b); return err }},
		"code above 32 bits":   {appendVarint([]byte{typeResetStream, 0}, 1<<33), func(b []byte) error { _, _, err := parseResetStreamFrame(append(b, 0)); return err }},
		"stream count too big": {appendVarint([]byte{typeMaxStreams}, 1<<61), func(b []byte) error { _, _, err := parseMaxStreamsFrame(b); return err }},
		"data beyond 2^62":     {appendVarint(appendVarint([]byte{typeStream, 0}, maxVarint), 1), func(b []byte) error { _, _, err := parseStreamFrame(append(b, 0)); return err }},
	} {
		if err := tc.parse(tc.b); !errors.Is(err, ErrInvalidFrame) {
			t.Errorf("%s: err %v, want ErrInvalidFrame", name, err)
		}
	}
}

func TestAckFrameAcksExactlyItsRanges(t *testing.T) {
	f := &ackFrame{ranges: []ackRange{{90, 100}, {50, 80}, {3, 3}}}
	for pn := uint64(0); pn < 110; pn++ {
		want := (pn >= 90 && pn <= 100) || (pn >= 50 && pn <= 80) || pn == 3
		if f.acks(pn) != want {
			t.Fatalf("acks(%d) = %v", pn, !want)
		}
	}
}
