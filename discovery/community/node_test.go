package community_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/discovery"
	"github.com/ipv8/go-ipv8/discovery/community"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunNodePrintsPeersAndMessages(t *testing.T) {
	tn := newTestNet(t)
	_, trAddr := tn.tracker("20.0.0.1")
	sender := tn.public("21.0.0.1", community.Config{Bootstrap: []netip.AddrPort{trAddr}})
	sender.Subscribe(func(e discovery.Event) {
		if e.Kind == discovery.PeerAdded {
			community.SendPayload(sender, e.Peer.Addr, 7, &hello{"hi node"})
		}
	})
	conn, err := tn.n.NewHost(netip.MustParseAddr("21.0.0.2"), wan).ListenUDP(8090)
	if err != nil {
		t.Fatal(err)
	}
	key := tn.key()
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- community.RunNode(ctx, simPort(conn), key, community.NodeOptions{
			Community: tn.cid, Bootstrap: []netip.AddrPort{trAddr}, Out: out, Clock: tn.n.Clock(),
		})
	}()
	// RunNode starts on its own goroutine; drive virtual time until the
	// lines appear (the writer goroutine prints them a moment later).
	var peerLine community.PeerLine
	var msgLine community.MessageLine
	for i := 0; i < 200 && (peerLine.Mid == "" || msgLine.Event == ""); i++ {
		tn.run(100 * time.Millisecond)
		time.Sleep(5 * time.Millisecond)
		for _, l := range strings.Split(out.String(), "\n") {
			switch {
			case strings.Contains(l, `"event":"peer"`):
				json.Unmarshal([]byte(l), &peerLine)
			case strings.Contains(l, `"event":"message"`):
				json.Unmarshal([]byte(l), &msgLine)
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if peerLine.Mid != sender.Mid().String() || !strings.HasPrefix(peerLine.PeerID, "12D3KooW") {
		t.Fatalf("peer line %+v; output:\n%s", peerLine, out.String())
	}
	if msgLine.ID != 7 || msgLine.Text != "hi node" || msgLine.Mid != sender.Mid().String() || msgLine.From != "21.0.0.1:8090" {
		t.Fatalf("message line %+v; output:\n%s", msgLine, out.String())
	}
}
