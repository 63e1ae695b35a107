package reliable

import (
	"sync"
	"time"
)

// deadline is a settable deadline for blocking Reads or Writes (the
// net.Conn contract): waiters select on wait(), which is closed when the
// deadline passes. A stream that never blocks costs no channel and no timer.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passed; nil when none is set
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for it to have closed cancel
	}
	d.timer = nil
	if d.cancel == nil {
		d.cancel = make(chan struct{})
	}
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		ch := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// release stops a pending timer: the stream was closed by its user and
// nothing can block on it any more, and a timer left running would hold
// its memory until it fired (an identify exchange sets 30 s deadlines and
// ends in milliseconds).
func (d *deadline) release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for it to have closed cancel, as set does
	}
	d.timer = nil
}

// wait returns a channel closed once the deadline has passed. Waiters
// hold the channel, so a deadline set while they wait still wakes them.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel == nil {
		d.cancel = make(chan struct{})
	}
	return d.cancel
}

func isClosed(c chan struct{}) bool {
	if c == nil {
		return false
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}
