// Package clock abstracts time so that the same protocol code runs on the
// wall clock and on internal/netsim's virtual clock, where a 10 000-host
// simulation covers a minute of protocol time in seconds.
package clock

import "time"

// Clock tells the time and schedules functions.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f once, after d, on a goroutine of the clock's
	// choosing (the real clock: its own; a virtual clock: the one that
	// advances time).
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a scheduled call.
type Timer interface {
	// Stop cancels the call; it reports whether the call was still pending.
	Stop() bool
	// Reset reschedules the call d from now; it reports whether it was pending.
	Reset(d time.Duration) bool
}

// Real is the wall clock.
var Real Clock = realClock{}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
