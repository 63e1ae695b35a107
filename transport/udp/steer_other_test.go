//go:build !linux

package udp

// steeringExpected says whether Listen must steer on this system.
const steeringExpected = false
