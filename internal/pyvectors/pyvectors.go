// Package pyvectors serves the wire vectors produced by py-ipv8 3.2 itself
// (pyipv8-vectors.txt, copied from the project's shared interop folder) to
// the tests that must reproduce them byte for byte.
package pyvectors

import (
	_ "embed"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

//go:embed pyipv8-vectors.txt
var raw string

// All returns every "name = value" line of the vector file, the value
// without its trailing comment. Most values are hex; a few (global_time) are
// decimal.
func All() (map[string]string, error) {
	out := make(map[string]string)
	for i, line := range strings.Split(raw, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("pyvectors: line %d: no '='", i+1)
		}
		value, _, _ = strings.Cut(value, "#")
		out[strings.TrimSpace(name)] = strings.TrimSpace(value)
	}
	return out, nil
}

// Vectors is the decoded vector file.
type Vectors map[string]string

// Must loads the vectors for a test; it panics on a malformed file.
func Must() Vectors {
	v, err := All()
	if err != nil {
		panic(err)
	}
	return v
}

// Bytes returns a hex vector; it panics when the name is missing or not hex,
// which is a broken test, not a runtime condition.
func (v Vectors) Bytes(name string) []byte {
	s, ok := v[name]
	if !ok {
		panic("pyvectors: no vector " + name)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(fmt.Sprintf("pyvectors: %s: %v", name, err))
	}
	return b
}

// Uint returns a decimal vector.
func (v Vectors) Uint(name string) uint64 {
	n, err := strconv.ParseUint(v[name], 10, 64)
	if err != nil {
		panic(fmt.Sprintf("pyvectors: %s: %v", name, err))
	}
	return n
}
