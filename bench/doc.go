// Package bench measures go-ipv8 against the stacks its users compare it
// with — bare quic-go and go-libp2p — in the same run on the same machine,
// and reports each figure as a ratio against the peer. It is its own module
// so that comparison-only dependencies (go-libp2p) stay out of the library.
//
//	cd bench && go test -run '^$' -bench . -benchtime 5x
//
// docs/PERFORMANCE.md records the figures with their commands.
package bench
