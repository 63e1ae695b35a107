package reliable

import (
	"reflect"
	"testing"
)

// Fuzz targets for every decoder of bytes from the network. Each checks
// that the parser never panics, never claims more bytes than it was given,
// and that what it accepts re-encodes to the same bytes. Seeds live in
// testdata/fuzz/FuzzParseXxx.

func checkConsumed(t *testing.T, b []byte, n int, err error) {
	if err == nil && (n <= 0 || n > len(b)) {
		t.Fatalf("consumed %d of %d bytes", n, len(b))
	}
}

func FuzzParsePacketHeader(f *testing.F) {
	f.Add(PacketHeader{PacketNumber: 1 << 20}.Append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := ParsePacketHeader(b)
		checkConsumed(t, b, n, err)
		if err != nil {
			return
		}
		// Varints need not be minimal, so compare values, not bytes.
		again, m, err := ParsePacketHeader(h.Append(nil))
		if err != nil || again != h || m != h.Len() || n > maxHeaderLen {
			t.Fatalf("header %+v (%d bytes) re-parses as %+v, %d, %v", h, n, again, m, err)
		}
	})
}

func FuzzParsePingFrame(f *testing.F) {
	f.Add(appendPingFrame(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := parsePingFrame(b)
		checkConsumed(t, b, n, err)
	})
}

func FuzzParseAckFrame(f *testing.F) {
	f.Add((&ackFrame{ranges: []ackRange{{10, 20}, {1, 5}}}).append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr ackFrame
		n, err := parseAckFrame(b, &fr)
		checkConsumed(t, b, n, err)
		if err != nil {
			return
		}
		for i, r := range fr.ranges {
			if r.smallest > r.largest || (i > 0 && r.largest+1 >= fr.ranges[i-1].smallest) {
				t.Fatalf("bad ranges %+v", fr.ranges)
			}
		}
		if len(fr.ranges) > maxAckRanges {
			t.Fatalf("%d ranges accepted", len(fr.ranges))
		}
	})
}

func FuzzParseAckFrequencyFrame(f *testing.F) {
	f.Add(ackFrequencyFrame{seq: 1, threshold: 8, maxAckDelay: 5000000}.append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, err := parseAckFrequencyFrame(b)
		checkConsumed(t, b, n, err)
		if err == nil && (fr.threshold == 0 || fr.threshold > maxAckThreshold || fr.maxAckDelay > maxAckDelayCap) {
			t.Fatalf("out-of-bounds frame accepted: %+v", fr)
		}
	})
}

func FuzzParseStreamFrame(f *testing.F) {
	f.Add((&streamFrame{id: 4, offset: 100, data: []byte("data"), fin: true}).append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, err := parseStreamFrame(b)
		checkConsumed(t, b, n, err)
		if err != nil {
			return
		}
		again, _, err := parseStreamFrame(fr.append(nil))
		if err != nil || !reflect.DeepEqual(again, fr) {
			t.Fatalf("re-encoded frame parses as %+v, %v; was %+v", again, err, fr)
		}
	})
}

func FuzzParseStreamOpenFrame(f *testing.F) {
	f.Add((&streamOpenFrame{streamFrame: streamFrame{id: 0, data: []byte("first")}, protocol: []byte("/p/1")}).append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, err := parseStreamOpenFrame(b)
		checkConsumed(t, b, n, err)
		if err == nil && (len(fr.protocol) == 0 || len(fr.protocol) > 255) {
			t.Fatalf("bad protocol length %d accepted", len(fr.protocol))
		}
	})
}

func FuzzParseResetStreamFrame(f *testing.F) {
	f.Add(resetStreamFrame{id: 1, code: 1, finalSize: 10}.append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, n, err := parseResetStreamFrame(b)
		checkConsumed(t, b, n, err)
	})
}

func FuzzParseStopSendingFrame(f *testing.F) {
	f.Add(stopSendingFrame{id: 1, code: 0}.append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, n, err := parseStopSendingFrame(b)
		checkConsumed(t, b, n, err)
	})
}

func FuzzParseMaxDataFrame(f *testing.F) {
	f.Add(maxDataFrame{max: 1 << 30}.append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, n, err := parseMaxDataFrame(b)
		checkConsumed(t, b, n, err)
	})
}

func FuzzParseMaxStreamDataFrame(f *testing.F) {
	f.Add(maxStreamDataFrame{id: 2, max: 1 << 20}.append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, n, err := parseMaxStreamDataFrame(b)
		checkConsumed(t, b, n, err)
	})
}

func FuzzParseMaxStreamsFrame(f *testing.F) {
	f.Add(maxStreamsFrame{max: 1024}.append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, n, err := parseMaxStreamsFrame(b)
		checkConsumed(t, b, n, err)
	})
}

func FuzzParseDatagramFrame(f *testing.F) {
	f.Add(datagramFrame{data: []byte("dgram")}.append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, n, err := parseDatagramFrame(b)
		checkConsumed(t, b, n, err)
	})
}

func FuzzParseCloseFrame(f *testing.F) {
	f.Add(closeFrame{code: 5, reason: []byte("bye")}.append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, err := parseCloseFrame(b)
		checkConsumed(t, b, n, err)
		if err == nil && len(fr.reason) > maxReasonLen {
			t.Fatalf("reason of %d bytes accepted", len(fr.reason))
		}
	})
}

// FuzzReceivePacket feeds whole packets to a connection: whatever they
// hold, the connection must not panic and must stay bounded.
func FuzzReceivePacket(f *testing.F) {
	b := PacketHeader{PacketNumber: 0}.Append(nil)
	b = (&streamOpenFrame{streamFrame: streamFrame{id: 0, data: []byte("x")}, protocol: []byte("/p")}).append(b)
	b = (&ackFrame{ranges: []ackRange{{0, 0}}}).append(b)
	f.Add(b)
	f.Add(append(PacketHeader{PacketNumber: 5}.Append(nil), maxStreamsFrame{max: 9}.append(nil)...))
	m := New(Config{KeepAlive: -1})
	defer m.Close()
	f.Fuzz(func(t *testing.T, pkt []byte) {
		c := newConn(m, newNullSession(), false)
		c.receive(pkt)
		c.mu.Lock()
		n := len(c.streams)
		c.mu.Unlock()
		if n > c.m.cfg.MaxIncomingStreams {
			t.Fatalf("%d streams", n)
		}
		c.CloseWithError(0, "")
	})
}

// FuzzReceivePacketSequence feeds a connection several packets (each
// prefixed by a one-byte length), so that stream and flow-control state
// built by one packet meets the next: opens, data, FINs, resets, window
// updates and ACKs in any order must never panic or grow state beyond
// the limits.
func FuzzReceivePacketSequence(f *testing.F) {
	seq := func(pkts ...[]byte) []byte {
		var b []byte
		for _, p := range pkts {
			b = append(append(b, byte(len(p))), p...)
		}
		return b
	}
	pkt := func(pn uint64, frames ...[]byte) []byte {
		b := PacketHeader{PacketNumber: pn}.Append(nil)
		for _, fr := range frames {
			b = append(b, fr...)
		}
		return b
	}
	open := (&streamOpenFrame{streamFrame: streamFrame{id: 1, data: []byte("abc")}, protocol: []byte("/p")}).append(nil)
	f.Add(seq(pkt(0, open), pkt(1, (&streamFrame{id: 1, offset: 3, data: []byte("d"), fin: true}).append(nil))))
	f.Add(seq(pkt(0, open), pkt(2, resetStreamFrame{id: 1, code: 1, finalSize: 3}.append(nil)), pkt(1, stopSendingFrame{id: 1}.append(nil))))
	f.Add(seq(pkt(5, maxStreamsFrame{max: 2000}.append(nil)), pkt(3, open), pkt(3, open)))
	m := New(Config{KeepAlive: -1})
	defer m.Close()
	f.Fuzz(func(t *testing.T, in []byte) {
		c := newConn(m, newNullSession(), false)
		for len(in) > 0 {
			n := int(in[0])
			in = in[1:]
			if n > len(in) {
				n = len(in)
			}
			c.receive(in[:n])
			in = in[n:]
		}
		c.mu.Lock()
		streams, acceptQ := len(c.streams), c.q.acceptLen()
		c.mu.Unlock()
		if streams > c.m.cfg.MaxIncomingStreams || acceptQ > c.m.cfg.MaxIncomingStreams {
			t.Fatalf("%d streams, %d waiting to be accepted", streams, acceptQ)
		}
		c.CloseWithError(0, "")
	})
}
