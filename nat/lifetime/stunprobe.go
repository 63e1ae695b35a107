package lifetime

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/ipv8/go-ipv8/internal/clock"
	"github.com/ipv8/go-ipv8/nat/internal/pcport"
	"github.com/ipv8/go-ipv8/nat/stun"
	"github.com/ipv8/go-ipv8/transport"
)

// STUNProber measures with a STUN server that honours RESPONSE-PORT (RFC
// 5780 §7.5; coturn, `ipv8 stun-server`, and every go-ipv8 host do): a
// mapping is a fresh socket that did one Binding exchange with the server,
// and its probe is a Binding request sent from another socket asking the
// server to answer to the mapping's public port. The answer comes from the
// server address the mapping talked to, so it passes any filtering while
// the mapping lives, and the mapping itself sends nothing.
type STUNProber struct {
	Server netip.AddrPort
	// Listen opens a fresh local UDP socket (default: kernel UDP on an
	// ephemeral port of the server's family).
	Listen func() (transport.PacketConn, error)
	// Timing of Open's exchange and of each probe. The exchange's
	// retransmissions must stay under 2 s (conntrack would promote the
	// flow to its long timeout); the default sends at 0, 0.2, 0.6 s and
	// waits until 1.5 s.
	Timing stun.Timing
	Clock  clock.Clock

	once  sync.Once
	mu    sync.Mutex
	asker *pcport.Port // the socket probes are sent from, opened on first use
}

var defaultProbeTiming = stun.Timing{RTO: 200 * time.Millisecond, Timeout: 1500 * time.Millisecond}

func (p *STUNProber) init() { p.once.Do(p.setDefaults) }

func (p *STUNProber) setDefaults() {
	if p.Timing.RTO <= 0 {
		p.Timing = defaultProbeTiming
	}
	if p.Clock == nil {
		p.Clock = clock.Real
	}
	if p.Listen == nil {
		p.Listen = func() (transport.PacketConn, error) {
			network := "udp4"
			if p.Server.Addr().Is6() && !p.Server.Addr().Is4In6() {
				network = "udp6"
			}
			return net.ListenUDP(network, nil)
		}
	}
}

// Close closes the socket the probes are sent from.
func (p *STUNProber) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.asker != nil {
		err := p.asker.Close()
		p.asker = nil
		return err
	}
	return nil
}

// stunMapping is one measured mapping: a socket, its public address, and
// the state of its one probe, driven by packet and timer callbacks.
type stunMapping struct {
	p      *STUNProber
	port   *pcport.Port
	public netip.AddrPort
	opened time.Time

	mu     sync.Mutex
	txid   [12]byte             // of the transaction in progress
	result chan bool            // resolved once per transaction
	timers []clock.Timer        // retransmissions and the deadline
	onResp func(netip.AddrPort) // what a matching response means
	closed bool
}

// Open implements Prober.
func (p *STUNProber) Open(ctx context.Context) (Mapping, error) {
	p.init()
	pc, err := p.Listen()
	if err != nil {
		return nil, fmt.Errorf("lifetime: open socket: %w", err)
	}
	m := &stunMapping{p: p, port: pcport.New(pc)}
	m.port.HandleSTUN(m.handle)
	var mapped netip.AddrPort
	req := stun.Request{TxID: stun.NewTxID()}
	ch := m.start(req.TxID, func(a netip.AddrPort) { mapped = a; m.opened = p.Clock.Now() },
		func() error { return m.port.WriteTo(req.Append(nil), p.Server) })
	select {
	case ok := <-ch:
		if !ok {
			m.Close()
			return nil, fmt.Errorf("lifetime: no answer from %s", p.Server)
		}
	case <-ctx.Done():
		m.Close()
		return nil, ctx.Err()
	}
	m.mu.Lock()
	m.public = mapped
	m.mu.Unlock()
	return m, nil
}

// start begins a transaction: send now and on the retransmission
// schedule; a response with txid calls onResp (under m.mu) and resolves
// the channel with true, the deadline with false.
func (m *stunMapping) start(txid [12]byte, onResp func(netip.AddrPort), send func() error) <-chan bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := make(chan bool, 1)
	if m.closed {
		ch <- false
		return ch
	}
	m.txid, m.result, m.onResp = txid, ch, onResp
	clk, t := m.p.Clock, m.p.Timing
	_ = send()
	at, gap := time.Duration(0), t.RTO
	for at+gap < t.Timeout {
		at += gap
		gap *= 2
		m.timers = append(m.timers, clk.AfterFunc(at, func() { _ = send() }))
	}
	m.timers = append(m.timers, clk.AfterFunc(t.Timeout, func() { m.resolve(false) }))
	return ch
}

// resolve ends the transaction in progress; m.mu must not be held.
func (m *stunMapping) resolve(ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.resolveLocked(ok)
}

func (m *stunMapping) resolveLocked(ok bool) {
	for _, tm := range m.timers {
		tm.Stop()
	}
	m.timers = nil
	if m.result != nil {
		m.result <- ok
		m.result = nil
	}
	m.txid = [12]byte{}
}

// handle runs for every STUN packet on the mapping's socket.
func (m *stunMapping) handle(pkt []byte, from netip.AddrPort) {
	r, err := stun.ParseResponse(pkt)
	if err != nil || r.Error != 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.result == nil || r.TxID != m.txid {
		return
	}
	if m.onResp != nil {
		m.onResp(r.Mapped)
	}
	m.resolveLocked(true)
}

// Opened implements Mapping.
func (m *stunMapping) Opened() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.opened
}

// Probe implements Mapping: from the prober's asking socket, a Binding
// request with RESPONSE-PORT set to the mapping's public port.
func (m *stunMapping) Probe() <-chan bool {
	asker, err := m.p.askerPort()
	if err != nil {
		ch := make(chan bool, 1)
		ch <- false
		return ch
	}
	req := stun.Request{TxID: stun.NewTxID(), ResponsePort: m.public.Port()}
	pkt := req.Append(nil)
	return m.start(req.TxID, nil, func() error { return asker.WriteTo(pkt, m.p.Server) })
}

func (p *STUNProber) askerPort() (*pcport.Port, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.asker == nil {
		pc, err := p.Listen()
		if err != nil {
			return nil, err
		}
		p.asker = pcport.New(pc)
	}
	return p.asker, nil
}

// Close implements Mapping; a probe in flight resolves as gone.
func (m *stunMapping) Close() error {
	m.mu.Lock()
	m.resolveLocked(false)
	m.closed = true
	m.mu.Unlock()
	return m.port.Close()
}
