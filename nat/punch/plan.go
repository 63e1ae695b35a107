package punch

import (
	"time"

	"github.com/ipv8/go-ipv8/nat"
)

// Budget bounds what one attempt may send and how long it may take.
type Budget struct {
	// Duration bounds the punching after the SYNC (default 3 s).
	Duration time.Duration
	// Interval is the period of repeated probes to the same addresses
	// (default 25 ms).
	Interval time.Duration
	// BirthdayProbes is the easy side's probes to random ports of the hard
	// side (default 1024); BirthdaySockets the ports the hard side opens
	// (default 256). With 256 of 64 512 ports open, 1024 probes hit one
	// with probability 1-(1-256/64512)^1024 ≈ 98 %.
	BirthdayProbes, BirthdaySockets int
	// PredictWindow is how many ports past the last one are tried at a
	// sequential NAT (default 32).
	PredictWindow int
}

func (b Budget) withDefaults() Budget {
	if b.Duration <= 0 {
		b.Duration = 3 * time.Second
	}
	if b.Interval <= 0 {
		b.Interval = 25 * time.Millisecond
	}
	if b.BirthdayProbes <= 0 {
		b.BirthdayProbes = 1024
	}
	if b.BirthdaySockets <= 0 {
		b.BirthdaySockets = 256
	}
	if b.PredictWindow <= 0 {
		b.PredictWindow = 32
	}
	b.BirthdayProbes = min(b.BirthdayProbes, 65535)
	b.BirthdaySockets = min(b.BirthdaySockets, 4096)
	b.PredictWindow = min(b.PredictWindow, 1024)
	return b
}

// hard reports whether a NAT maps per destination: the address a peer
// learnt for it is not where its packets to this peer will come from.
func hard(t Traits) bool {
	return !t.NoNAT && (t.Mapping == nat.AddressDependent || t.Mapping == nat.AddressAndPortDependent)
}

// lenient reports whether a NAT lets in packets from any port of an IP it
// sent to (or from anywhere): a peer whose port is unknown gets through.
func lenient(t Traits) bool {
	return t.Filtering == nat.EndpointIndependent || t.Filtering == nat.AddressDependent
}

// Choose picks how the initiator (a) and the responder (b) punch:
//
//   - neither NAT maps per destination: Direct (each knows the other's
//     address);
//   - one does (h), the other (e) does not: Direct if e's filter lets in
//     any port of h's address; else Predict if h allocates ports
//     sequentially; else Birthday, h opening the ports;
//   - both do: Predict if both allocate sequentially, else None.
//
// Unknown behaviours count as the easy kind (a direct try is cheap; the
// relay stays as fallback).
func Choose(a, b Traits, budget Budget) Plan {
	budget = budget.withDefaults()
	p := Plan{Duration: uint32(budget.Duration / time.Millisecond), Interval: uint16(budget.Interval / time.Millisecond)}
	ha, hb := hard(a), hard(b)
	switch {
	case !ha && !hb:
		p.Strategy = Direct
	case ha && hb:
		if a.Alloc == AllocSequential && b.Alloc == AllocSequential {
			p.Strategy, p.Hard = Predict, HardInitiator|HardResponder
			p.Probes = uint16(budget.PredictWindow)
		}
	default:
		h, e, side := a, b, HardInitiator
		if hb {
			h, e, side = b, a, HardResponder
		}
		switch {
		case lenient(e):
			p.Strategy = Direct
		case h.Alloc == AllocSequential:
			p.Strategy, p.Hard = Predict, side
			p.Probes = uint16(budget.PredictWindow)
		default:
			p.Strategy, p.Hard = Birthday, side
			p.Probes = uint16(budget.BirthdayProbes)
			p.Sockets = uint16(budget.BirthdaySockets)
		}
	}
	return p
}
