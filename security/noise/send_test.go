package noise

import (
	"fmt"
	"net/netip"
	"testing"
	"unsafe"
)

// SendBatch seals a batch back to back in one buffer (so the port can
// hand a run to the kernel as one GSO send with one iovec), every packet
// of it opens at the peer, in order, and the fast path allocates nothing.
func TestSendBatchSealsBackToBack(t *testing.T) {
	n := newFakeNet(t)
	clk := newFakeClock()
	a := newNode(t, n, "10.0.0.1:1000", nil, Config{Clock: clk})
	b := newNode(t, n, "10.0.0.2:2000", nil, Config{Clock: clk})
	sa, sb := pair(t, a, b, true)
	ib := newInbox(sb)
	n.settle()
	var batches, gaps int
	a.tr.SetBatchWriter(func(pkts [][]byte, to netip.AddrPort) (int, error) {
		batches++
		for i, p := range pkts {
			if i > 0 {
				prev := pkts[i-1]
				if uintptr(unsafe.Pointer(&prev[0]))+uintptr(len(prev)) != uintptr(unsafe.Pointer(&p[0])) {
					gaps++
				}
			}
			a.port.WriteTo(p, to)
		}
		return len(pkts), nil
	})
	bs := sa.(interface {
		SendBatch([][]byte) (int, error)
	})
	payloads := make([][]byte, 100)
	for i := range payloads {
		payloads[i] = fmt.Appendf(make([]byte, 0, 1000), "payload %d %0900d", i, i)
	}
	if k, err := bs.SendBatch(payloads); k != len(payloads) || err != nil {
		t.Fatalf("SendBatch: %d, %v", k, err)
	}
	if batches != 2 || gaps != 0 {
		t.Fatalf("%d batches with %d gaps between packets; want 2 (64 + 36), back to back", batches, gaps)
	}
	got := ib.waitN(t, len(payloads))
	for i, p := range got {
		if string(p) != string(payloads[i]) {
			t.Fatalf("payload %d arrived as %.20q…", i, p)
		}
	}
	a.tr.SetBatchWriter(func(pkts [][]byte, to netip.AddrPort) (int, error) { return len(pkts), nil })
	if allocs := testing.AllocsPerRun(1000, func() { bs.SendBatch(payloads[:32]) }); allocs != 0 {
		t.Fatalf("SendBatch allocates %.1f times per batch of 32", allocs)
	}
}
