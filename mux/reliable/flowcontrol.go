package reliable

import "time"

// recvWindow is the receive side of flow control, for one stream or for the
// whole connection. The limit advertised to the peer is consumed+window;
// the window starts small and doubles whenever the application consumed a
// window's worth in under two RTTs — that is, whenever the window and not
// the path limited the transfer — so it settles at two to four times the
// bandwidth-delay product and never stalls a long fat path at a fixed size.
type recvWindow struct {
	limit     uint64 // what the peer may send up to (as last advertised)
	window    uint64
	maxWindow uint64
	consumed  uint64

	epochStart    time.Duration
	epochConsumed uint64
}

func newRecvWindow(initial, maxWindow uint64) recvWindow {
	return recvWindow{limit: initial, window: initial, maxWindow: maxWindow}
}

// needsUpdate reports whether a quarter of the window was consumed since
// the last advertisement.
func (w *recvWindow) needsUpdate() bool { return w.limit-w.consumed <= w.window*3/4 }

// advance grows the window when auto-tuning says so, moves the limit, and
// reports whether the window grew.
func (w *recvWindow) advance(now, srtt time.Duration) bool {
	grew := false
	if used := w.consumed - w.epochConsumed; used > 0 && w.epochStart > 0 && w.window < w.maxWindow {
		elapsed := now - w.epochStart
		if float64(elapsed)*float64(w.window) < 2*float64(srtt)*float64(used) {
			w.window = min(2*w.window, w.maxWindow)
			grew = true
		}
	}
	w.epochStart, w.epochConsumed = max(now, 1), w.consumed
	w.limit = max(w.limit, w.consumed+w.window)
	return grew
}

// ensure raises the window to at least n (the connection's window follows
// its streams').
func (w *recvWindow) ensure(n uint64) {
	if n > w.window {
		w.window = min(n, w.maxWindow)
	}
}
