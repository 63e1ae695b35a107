//go:build unix

package reliable_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process used so far (user + system): on
// a shared machine the CPU a transfer costs, unlike its wall time, does not
// depend on what else runs.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
