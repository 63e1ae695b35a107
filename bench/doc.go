// Package bench measures go-ipv8 against the stacks its users compare it
// with — bare quic-go and go-libp2p (over QUIC, and over TCP with Noise and
// yamux) — in the same run on the same machine, and reports each figure
// next to its ratio to the peer: one-stream throughput, connect and first
// round trip, handshakes per second, heap and goroutines per idle session.
// It also holds the interop tests between a go-libp2p host and a go-ipv8
// host. It is its own module so that comparison-only dependencies
// (go-libp2p) stay out of the library.
//
//	cd bench && go test -run '^$' -bench '^BenchmarkOneStream$' -benchtime 10x
//
// README.md gives every command and says exactly what each benchmark
// measures; docs/PERFORMANCE.md records the figures.
package bench
