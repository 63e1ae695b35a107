package community

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"unicode/utf8"

	"github.com/ipv8/go-ipv8/discovery"
	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/internal/clock"
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/transport"
)

// NodeOptions configures RunNode.
type NodeOptions struct {
	Community wire.CommunityID
	Bootstrap []netip.AddrPort
	// Out receives one JSON object per line: every peer verified
	// ({"event":"peer",…}) and every application message received
	// ({"event":"message",…}); nil discards them.
	Out io.Writer
	// Advertise go-ipv8 Noise sessions to peers (default true; set
	// NoAdvertise to behave as a plain py-ipv8 peer).
	NoAdvertise bool
	Clock       clock.Clock
	Logger      *slog.Logger
}

// PeerLine is the JSON form of a verified peer that RunNode and `ipv8 walk`
// print.
type PeerLine struct {
	Event        string `json:"event,omitempty"`
	Mid          string `json:"mid"`
	PeerID       string `json:"peer_id"`
	Address      string `json:"address"`
	LAN          string `json:"lan,omitempty"`
	IntroducedBy string `json:"introduced_by,omitempty"`
	Noise        bool   `json:"noise"`
}

// NewPeerLine describes p.
func NewPeerLine(p discovery.PeerInfo) PeerLine {
	l := PeerLine{Mid: p.Mid.String(), PeerID: p.ID.String(), Address: p.Addr.String(), Noise: p.Noise}
	if p.LAN.IsValid() {
		l.LAN = p.LAN.String()
	}
	if !p.IntroducedBy.IsZero() {
		l.IntroducedBy = p.IntroducedBy.String()
	}
	return l
}

// MessageLine is the JSON form of an application message RunNode prints.
type MessageLine struct {
	Event   string `json:"event"`
	ID      int    `json:"id"`
	From    string `json:"from"`
	Mid     string `json:"mid"`
	PeerID  string `json:"peer_id"`
	Time    uint64 `json:"global_time"`
	Text    string `json:"text,omitempty"` // the payload read as one varlenHutf8, when it is one
	Payload string `json:"payload_hex"`
}

// RunNode runs a community on port with identity key until ctx ends: it
// walks from the bootstrap addresses, answers introductions, punctures for
// its peers, and prints each verified peer and each signed application
// message (any ID 0–230) to opts.Out. It is what `ipv8 node --community`
// runs.
func RunNode(ctx context.Context, port transport.Port, key *peer.PrivateKey, opts NodeOptions) error {
	cfg := Config{ID: opts.Community, Key: key, Bootstrap: opts.Bootstrap, Clock: opts.Clock, Logger: opts.Logger}
	if !opts.NoAdvertise {
		cfg.Advertise = &wire.Advert{Flags: wire.CapNoise}
	}
	ep := NewEndpoint(port, nil)
	defer ep.Close()
	c, err := New(ep, cfg)
	if err != nil {
		return err
	}
	defer c.Close()

	// Handlers run on the endpoint's worker and must not block: lines go
	// through a buffered channel to a writer goroutine, and are dropped
	// if it falls behind.
	lines := make(chan any, 256)
	stop := make(chan struct{})
	done := make(chan struct{})
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	go func() {
		defer close(done)
		enc := json.NewEncoder(out)
		for {
			select {
			case l := <-lines:
				_ = enc.Encode(l)
			case <-stop:
				for {
					select {
					case l := <-lines:
						_ = enc.Encode(l)
					default:
						return
					}
				}
			}
		}
	}()
	emit := func(l any) {
		select {
		case <-stop:
		case lines <- l:
		default:
		}
	}
	cancel := c.Subscribe(func(e discovery.Event) {
		if e.Kind == discovery.PeerAdded {
			l := NewPeerLine(e.Peer)
			l.Event = "peer"
			emit(l)
		}
	})
	defer cancel()
	for id := range wire.FirstReserved {
		_ = c.Handle(byte(id), true, func(m *Message) {
			l := MessageLine{Event: "message", ID: int(m.ID), From: m.From.String(), Mid: m.Mid.String(),
				PeerID: m.PeerID().String(), Time: m.GlobalTime, Payload: hex.EncodeToString(m.Payload)}
			var t struct{ Text string }
			if wire.Unmarshal(m.Payload, &t) == nil && utf8.ValidString(t.Text) {
				l.Text = t.Text
			}
			emit(l)
		})
	}
	c.Start()
	<-ctx.Done()
	c.Close()
	cancel()
	close(stop)
	<-done
	return nil
}
