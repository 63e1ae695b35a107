package noise

// A dial by peer ID while another dial to the same peer is in flight over
// another path (the host tries a peer's addresses one after another, a
// relay circuit last) joins the handshake in flight: one session per peer.
// The later path is the one to try, since the earlier ones were given a
// head start and did not answer, so the handshake moves there: its
// initiation goes out over it at once, and its retransmissions follow it.
// An answer over an earlier path still completes the handshake (answers
// are matched by index, not by path), and the session then roams to where
// the peer's packets come from.

// redirect moves the retransmissions of the handshake in flight to path
// and sends the initiation over it now. It does nothing for the same path,
// a finished handshake, or a resumption towards a relay (relays hand
// HandleVia IK and XX only; the resumption falls back to IK on its path).
func (h *handshake) redirect(path Path) {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, direct := path.(*directPath)
	if h.finished || h.rekey != nil || (h.pattern == PatternResume && !direct) || h.packet == nil || samePath(h.path, path) {
		return
	}
	h.t.log.Debug("handshake redirected", "remote", h.remoteID.ShortString(), "from", h.path.Addr(), "to", path.Addr(), "kind", path.Kind())
	h.path = path
	h.refreshMAC2Locked()
	_ = h.t.write(h.path, h.packet)
}

// samePath reports whether a and b lead to the same place (two direct
// paths to one address are the same path).
func samePath(a, b Path) bool {
	if a == b {
		return true
	}
	da, ok1 := a.(*directPath)
	db, ok2 := b.(*directPath)
	return ok1 && ok2 && da.addr == db.addr
}
