package reliable

import "slices"

// span is the half-open interval [start, end).
type span struct{ start, end uint64 }

// rangeSet is a set of uint64 values kept as sorted, disjoint, non-adjacent
// spans. Stream reassembly, acknowledged and lost stream data, and received
// packet numbers are all range sets; they stay short because data mostly
// arrives in order.
type rangeSet struct{ s []span }

func (r *rangeSet) empty() bool { return len(r.s) == 0 }

// add inserts [start, end) and returns how many values were new.
func (r *rangeSet) add(start, end uint64) uint64 {
	if start >= end {
		return 0
	}
	// Fast path: append at or after the last span.
	if n := len(r.s); n == 0 || start > r.s[n-1].end {
		r.s = append(r.s, span{start, end})
		return end - start
	} else if start >= r.s[n-1].start {
		last := &r.s[n-1]
		if end <= last.end {
			return 0
		}
		added := end - last.end
		last.end = end
		return added
	}
	// General case: find the first span whose end ≥ start.
	i := 0
	for i < len(r.s) && r.s[i].end < start {
		i++
	}
	j := i
	covered := uint64(0)
	ns, ne := start, end
	for j < len(r.s) && r.s[j].start <= end {
		lo, hi := max(r.s[j].start, start), min(r.s[j].end, end)
		if hi > lo {
			covered += hi - lo
		}
		ns = min(ns, r.s[j].start)
		ne = max(ne, r.s[j].end)
		j++
	}
	switch {
	case i == j:
		r.s = append(r.s, span{})
		copy(r.s[i+1:], r.s[i:])
		r.s[i] = span{ns, ne}
	default:
		r.s[i] = span{ns, ne}
		r.s = append(r.s[:i+1], r.s[j:]...)
	}
	return end - start - covered
}

// remove deletes [start, end) from the set.
func (r *rangeSet) remove(start, end uint64) {
	if start >= end {
		return
	}
	i := 0
	for i < len(r.s) && r.s[i].end <= start {
		i++
	}
	j := i
	for j < len(r.s) && r.s[j].start < end {
		j++
	}
	if i == j {
		return
	}
	var keep [2]span
	k := 0
	if r.s[i].start < start {
		keep[k] = span{r.s[i].start, start}
		k++
	}
	if r.s[j-1].end > end {
		keep[k] = span{end, r.s[j-1].end}
		k++
	}
	r.s = slices.Replace(r.s, i, j, keep[:k]...)
}

// contains reports whether v is in the set.
func (r *rangeSet) contains(v uint64) bool {
	for i := len(r.s) - 1; i >= 0; i-- {
		if v >= r.s[i].end {
			return false
		}
		if v >= r.s[i].start {
			return true
		}
	}
	return false
}

// prefixEnd returns the end of the span starting at or before from that
// contains from, or from when from is not in the set.
func (r *rangeSet) prefixEnd(from uint64) uint64 {
	for _, x := range r.s {
		if x.start > from {
			break
		}
		if x.end > from {
			return x.end
		}
	}
	return from
}

// trimBelow drops all values below v.
func (r *rangeSet) trimBelow(v uint64) {
	i := 0
	for i < len(r.s) && r.s[i].end <= v {
		i++
	}
	if i > 0 {
		r.s = append(r.s[:0], r.s[i:]...)
	}
	if len(r.s) > 0 && r.s[0].start < v {
		r.s[0].start = v
	}
}

// first returns the lowest span; ok is false when the set is empty.
func (r *rangeSet) first() (span, bool) {
	if len(r.s) == 0 {
		return span{}, false
	}
	return r.s[0], true
}

// popFirst removes up to n values from the front of the lowest span and
// returns them as a span.
func (r *rangeSet) popFirst(n uint64) span {
	x := &r.s[0]
	if x.end-x.start <= n {
		s := *x
		r.s = append(r.s[:0], r.s[1:]...)
		return s
	}
	s := span{x.start, x.start + n}
	x.start += n
	return s
}
