//go:build !unix

package noise

import "time"

func processCPU() time.Duration { return 0 }
