package relay

import (
	"errors"
	"fmt"
	"net/netip"
)

// Code says why a request failed (ERROR) or a circuit ended (CLOSE).
type Code uint16

const (
	CodeNone               Code = 0 // a circuit closed by one of its ends
	CodeMalformed          Code = 1
	CodeBadCookie          Code = 2  // the cookie is not this address's (or too old): ask again
	CodeBadSignature       Code = 3  // the signature does not verify
	CodeNoReservation      Code = 4  // the target holds no reservation at this relay
	CodeReservations       Code = 5  // Limits.MaxReservations reached
	CodeReservationsPerIP  Code = 6  // Limits.MaxReservationsPerIP reached
	CodeCircuits           Code = 7  // Limits.MaxCircuits reached
	CodeCircuitsPerPeer    Code = 8  // Limits.MaxCircuitsPerPeer reached (initiator or target)
	CodeCircuitsPerIP      Code = 9  // Limits.MaxCircuitsPerIP reached
	CodeRefused            Code = 10 // the target did not accept in time
	CodeDurationLimit      Code = 11 // the circuit reached Limits.CircuitDuration
	CodeDataLimit          Code = 12 // the circuit reached Limits.CircuitBytes
	CodeUnknownCircuit     Code = 13 // no such circuit (or not from this address)
	CodeIdle               Code = 14 // nothing crossed the circuit for Limits.CircuitIdle
	CodeShutdown           Code = 15 // the relay is closing
	CodeSelf               Code = 16 // a circuit to oneself
	CodeSignatureRateLimit Code = 17 // Limits.SignaturesPerSecond reached: retry later
)

var codeText = map[Code]string{
	CodeNone:               "closed by the peer",
	CodeMalformed:          "malformed request",
	CodeBadCookie:          "stale or foreign cookie",
	CodeBadSignature:       "bad signature",
	CodeNoReservation:      "the target has no reservation at the relay",
	CodeReservations:       "the relay's reservation limit is reached (relay Limits.MaxReservations)",
	CodeReservationsPerIP:  "the relay's per-IP reservation limit is reached (relay Limits.MaxReservationsPerIP)",
	CodeCircuits:           "the relay's circuit limit is reached (relay Limits.MaxCircuits)",
	CodeCircuitsPerPeer:    "the relay's per-peer circuit limit is reached (relay Limits.MaxCircuitsPerPeer)",
	CodeCircuitsPerIP:      "the relay's per-IP circuit limit is reached (relay Limits.MaxCircuitsPerIP)",
	CodeRefused:            "the target did not accept the circuit",
	CodeDurationLimit:      "the circuit reached its duration limit (relay Limits.CircuitDuration)",
	CodeDataLimit:          "the circuit reached its data limit (relay Limits.CircuitBytes)",
	CodeUnknownCircuit:     "unknown circuit",
	CodeIdle:               "the circuit was idle too long (relay Limits.CircuitIdle)",
	CodeShutdown:           "the relay is shutting down",
	CodeSelf:               "a circuit to oneself",
	CodeSignatureRateLimit: "the relay verifies no more signatures per second now (relay Limits.SignaturesPerSecond)",
}

func (c Code) String() string {
	if s, ok := codeText[c]; ok {
		return s
	}
	return fmt.Sprintf("code %d", uint16(c))
}

// Sentinel errors, for errors.Is.
var (
	// ErrNoReservation: the target holds no reservation at the relay.
	ErrNoReservation = errors.New("relay: no reservation")
	// ErrResourceLimit: one of the relay's limits on reservations or
	// circuits is reached (the *Error says which).
	ErrResourceLimit = errors.New("relay: resource limit")
	// ErrRefused: the target did not accept the circuit.
	ErrRefused = errors.New("relay: refused")
	// ErrLimitReached: a circuit was closed at its duration or data limit.
	ErrLimitReached = errors.New("relay: circuit limit reached")
	// ErrRejected: the relay did not accept our credentials (cookie,
	// signature).
	ErrRejected = errors.New("relay: rejected")
	// ErrTimeout: the relay did not answer.
	ErrTimeout = errors.New("relay: no answer (timeout)")
	// ErrClosed: the endpoint or circuit is closed.
	ErrClosed = errors.New("relay: closed")
)

// Error is a relay's refusal, or the reason a circuit ended.
type Error struct {
	Relay netip.AddrPort
	Code  Code
}

func (e *Error) Error() string {
	return fmt.Sprintf("relay %s: %s", e.Relay, e.Code)
}

// Is maps codes to the sentinel errors.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNoReservation:
		return e.Code == CodeNoReservation
	case ErrResourceLimit:
		switch e.Code {
		case CodeReservations, CodeReservationsPerIP, CodeCircuits, CodeCircuitsPerPeer, CodeCircuitsPerIP, CodeSignatureRateLimit:
			return true
		}
	case ErrRefused:
		return e.Code == CodeRefused || e.Code == CodeSelf
	case ErrLimitReached:
		return e.Code == CodeDurationLimit || e.Code == CodeDataLimit || e.Code == CodeIdle
	case ErrRejected:
		return e.Code == CodeBadCookie || e.Code == CodeBadSignature || e.Code == CodeMalformed
	case ErrClosed:
		return e.Code == CodeNone || e.Code == CodeShutdown || e.Code == CodeUnknownCircuit
	}
	return false
}
