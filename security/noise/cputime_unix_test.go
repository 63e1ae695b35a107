//go:build unix

package noise

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process used so far (user + system), for
// benchmarks that report handshakes per CPU-second: on a shared machine
// that figure, unlike wall time, does not depend on what else runs.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
