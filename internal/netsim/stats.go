package netsim

import (
	"fmt"
	"strings"
	"sync/atomic"
)

// DropReason says why the network dropped a packet.
type DropReason uint8

// Reasons a packet is dropped.
const (
	dropNone              DropReason = iota
	DropLoss                         // random loss on a link (Link.Loss)
	DropQueue                        // tail drop: a link's queue was full
	DropMTU                          // larger than the MTU of a link on its path
	DropNoRoute                      // no host or NAT holds the destination address (or it moved away in flight)
	DropNoListener                   // the destination host has no open Conn on the port
	DropRecvBuffer                   // the receiving Conn's buffer was full (SetReadBuffer)
	DropNATNoMapping                 // inbound to a NAT port with no live mapping
	DropNATFiltered                  // inbound refused by the NAT's filtering behaviour
	DropHairpin                      // to the NAT's own public address from inside, without Hairpinning
	DropNATPortsExhausted            // the NAT had no free external port for a new mapping
	numDropReasons
)

var dropNames = [numDropReasons]string{
	dropNone:              "none",
	DropLoss:              "loss",
	DropQueue:             "queue",
	DropMTU:               "mtu",
	DropNoRoute:           "no-route",
	DropNoListener:        "no-listener",
	DropRecvBuffer:        "recv-buffer",
	DropNATNoMapping:      "nat-no-mapping",
	DropNATFiltered:       "nat-filtered",
	DropHairpin:           "nat-hairpin",
	DropNATPortsExhausted: "nat-ports-exhausted",
}

func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}

// Stats counts what happened to packets in the network.
type Stats struct {
	Sent       uint64 // packets written by Conns
	Delivered  uint64 // packets handed to a Conn's queue or handler (duplicates included)
	Duplicated uint64 // extra copies made by Link.Duplicate
	Reordered  uint64 // packets held back by Link.Reorder
	// Drops counts dropped packets, indexed by DropReason.
	Drops [numDropReasons]uint64
}

// Dropped is the number of packets dropped for reason r.
func (s Stats) Dropped(r DropReason) uint64 {
	if r >= numDropReasons {
		return 0
	}
	return s.Drops[r]
}

// TotalDropped is the number of packets dropped for any reason.
func (s Stats) TotalDropped() uint64 {
	var t uint64
	for _, d := range s.Drops {
		t += d
	}
	return t
}

func (s Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sent=%d delivered=%d duplicated=%d reordered=%d dropped=%d",
		s.Sent, s.Delivered, s.Duplicated, s.Reordered, s.TotalDropped())
	for r := DropReason(1); r < numDropReasons; r++ {
		if s.Drops[r] > 0 {
			fmt.Fprintf(&b, " %s=%d", r, s.Drops[r])
		}
	}
	return b.String()
}

// counters are updated from under the network lock and from deliveries
// outside it, so they are atomic.
type counters struct {
	sent, delivered, duplicated, reordered atomic.Uint64
	drops                                  [numDropReasons]atomic.Uint64
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Sent:       c.sent.Load(),
		Delivered:  c.delivered.Load(),
		Duplicated: c.duplicated.Load(),
		Reordered:  c.reordered.Load(),
	}
	for i := range c.drops {
		s.Drops[i] = c.drops[i].Load()
	}
	return s
}
