package reliable

import (
	"testing"
	"time"
)

func TestStreamTransfersBytesOnLoopback(t *testing.T) {
	p := loopbackPair(t, Config{}, plainPayload)
	const n = 8 << 20
	d := transfer(t, p, n, 1, 60*time.Second)
	t.Logf("%d MiB in %v (%.0f MB/s); client %+v", n>>20, d, float64(n)/d.Seconds()/1e6, p.client.Stats())
}
