//go:build race

package sim

// Under the race detector the 1 000-host scenario takes minutes; 300 hosts
// keep the package under a minute. Run without -race for the full size.
const scenarioNodes = 300
