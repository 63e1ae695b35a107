package transport

import "strings"

// PathChange says what changed on a Conn's path; several bits may be set.
type PathChange uint8

const (
	// PathRTTChanged: the smoothed RTT moved well away from the last value reported.
	PathRTTChanged PathChange = 1 << iota
	// PathAddressChanged: the remote's address changed (roaming, NAT rebinding).
	PathAddressChanged
	// PathLossSpike: the loss rate over the last interval rose well above its usual level.
	PathLossSpike
	// PathBandwidthChanged: the delivery-rate estimate moved by a large factor.
	PathBandwidthChanged
)

func (c PathChange) String() string {
	var parts []string
	for _, x := range []struct {
		bit  PathChange
		name string
	}{{PathRTTChanged, "rtt"}, {PathAddressChanged, "address"}, {PathLossSpike, "loss"}, {PathBandwidthChanged, "bandwidth"}} {
		if c&x.bit != 0 {
			parts = append(parts, x.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// PathEvent is a significant change of a Conn's path, with the Stats
// measured when it was noticed.
type PathEvent struct {
	Change PathChange
	Stats  Stats
}

// PathSubscriber is implemented by Conns that tell the application when
// their path changes (the raw-UDP transport's Conns do). Applications
// type-assert a Conn to it.
type PathSubscriber interface {
	// SubscribePathChanges returns a channel of path events and a function
	// that ends the subscription (and closes the channel). A subscriber that
	// does not keep up gets older events folded into newer ones: it misses
	// no kind of change and always sees the latest Stats.
	// The channel is closed when the Conn ends.
	SubscribePathChanges() (<-chan PathEvent, func())
}
