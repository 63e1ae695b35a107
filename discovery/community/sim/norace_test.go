//go:build !race

package sim

const scenarioNodes = 1000
