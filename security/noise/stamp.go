package noise

import "time"

// stamp is a point in time as nanoseconds since its Transport's epoch (on
// the Transport's clock): 8 bytes where a time.Time takes 24, for the
// deadlines every session keeps for its whole life. The zero stamp means
// unset, as a zero time.Time did: no deadline is still ahead.
type stamp int64

func (t *Transport) stampOf(tm time.Time) stamp { return stamp(tm.Sub(t.epoch)) }

func (t *Transport) timeOf(s stamp) time.Time { return t.epoch.Add(time.Duration(s)) }

// before reports whether now is before the deadline s (an unset one never
// is, even on a clock set back past the epoch).
func (t *Transport) before(now time.Time, s stamp) bool { return s != 0 && now.Before(t.timeOf(s)) }
