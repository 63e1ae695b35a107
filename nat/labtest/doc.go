// Package labtest holds the end-to-end tests of NAT traversal: hole
// punching, relaying and the relay-to-direct upgrade of running sessions,
// first on internal/netsim's NATs and then in nat/natlab's lab of real
// Linux NATs (network namespaces and nftables; those tests need root and
// skip, saying why, without it). The lab tests write the connectivity
// matrix of docs/NAT.md. The package has no code of its own besides tests.
package labtest
