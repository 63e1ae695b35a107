package reliable

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/internal/netsim"
)

// TestStreamsOpenEchoAndCloseUnderLossReorderDuplication opens many short
// streams (some empty: an OPEN and a FIN only) at once over a path losing
// 10% of packets with reordering and duplication: every STREAM_OPEN, FIN
// and RESET path of the state machine meets loss, and every stream must
// echo exactly and then be forgotten on both sides.
func TestStreamsOpenEchoAndCloseUnderLossReorderDuplication(t *testing.T) {
	link := netsim.Link{Latency: 2 * time.Millisecond, Loss: 0.05, Reorder: 0.02, Duplicate: 0.02}
	sn := newSimNet(t, 21, link, link)
	p := connect(t, sn.pcC, sn.pcS, Config{}, Config{}, plainPayload)
	ctx := ctxT(t, 2*time.Minute)
	go func() {
		for {
			s, err := p.server.AcceptStream(ctx)
			if err != nil {
				return
			}
			go func() {
				io.Copy(s, s)
				s.CloseWrite()
			}()
		}
	}()
	var wg sync.WaitGroup
	const streams = 300
	errs := make(chan error, streams)
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := p.client.OpenStream(ctx, "/test/echo/1")
			if err != nil {
				errs <- err
				return
			}
			msg := bytes.Repeat([]byte(fmt.Sprintf("stream %d|", i)), 100*(i%7))
			go func() {
				s.Write(msg)
				s.CloseWrite()
			}()
			got, err := io.ReadAll(s)
			if err != nil || !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("stream %d: %d/%d bytes, %v", i, len(got), len(msg), err)
			}
			s.Close()
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return streamCount(p.client) == 0 && streamCount(p.server) == 0 }, "streams forgotten")
}
