package reliable

// PING (type 0x01) has no fields. It is ack-eliciting: it keeps an idle
// connection's path alive and probes for an RTT sample.

func appendPingFrame(b []byte) []byte { return append(b, typePing) }

func parsePingFrame(b []byte) (int, error) {
	if len(b) == 0 || b[0] != typePing {
		return 0, invalid("not a PING frame")
	}
	return 1, nil
}
