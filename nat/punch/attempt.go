package punch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/ipv8/go-ipv8/transport"
)

// attempt is one hole punch with one peer, in either role: a struct driven
// by its own goroutine for the attempt's few seconds (the coordination and
// the probe schedule) and by the packets the port and the extra sockets
// hand it.
type attempt struct {
	p         *Puncher
	id        ID
	initiator bool
	ch        Channel
	signals   chan Packet

	mu        sync.Mutex
	self      Info
	peer      Info
	plan      Plan
	started   time.Time // when punching started
	seq       uint32
	sentAt    map[uint32]time.Time
	learned   []netip.AddrPort // where the peer's probes came from
	aux       []*sock
	won       *win
	wonCh     chan struct{}
	nominated bool // initiator: the responder acknowledged the nomination
	probes    int
	finished  bool
}

// win is the pair of addresses that worked.
type win struct {
	s    *sock
	addr netip.AddrPort
	rtt  time.Duration
	at   time.Time
}

func (p *Puncher) newAttempt(id ID, initiator bool, ch Channel) *attempt {
	return &attempt{p: p, id: id, initiator: initiator, ch: ch, signals: make(chan Packet, 16),
		sentAt: map[uint32]time.Time{}, wonCh: make(chan struct{})}
}

// signal hands the attempt a coordination message (never blocks).
func (a *attempt) signal(pk Packet) {
	select {
	case a.signals <- pk:
	default:
	}
}

// Option changes one attempt.
type Option func(*options)

type options struct{ plan *Plan }

// WithPlan makes the initiator use plan instead of the one Choose picks
// (to measure a strategy where Choose would not try it).
func WithPlan(plan Plan) Option { return func(o *options) { o.plan = &plan } }

// Initiate runs a hole punch with the peer at the other end of ch, as the
// initiator (DCUtR's model): it sends its addresses and NAT traits
// (CONNECT), measures the channel's RTT by the peer's REPLY, sends the
// plan (SYNC) and starts punching half an RTT later, when the SYNC reaches
// the peer and the peer starts too. It returns when a probe was answered
// (Result.Path), or with Result.Err set when the plan's time ran out. The
// error return is for failures before any punching (no Self, no answer).
func (p *Puncher) Initiate(ctx context.Context, ch Channel, opts ...Option) (*Result, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	a := p.newAttempt(p.newID(), true, ch)
	if err := p.register(a); err != nil {
		return nil, err
	}
	self, err := p.cfg.Self(ctx)
	if err != nil {
		p.unregister(a)
		return nil, fmt.Errorf("punch: describing this host: %w", err)
	}
	a.mu.Lock()
	a.self = self
	a.mu.Unlock()

	reply, rtt, err := a.coordinate(ctx, self)
	if err != nil {
		p.unregister(a)
		return nil, err
	}
	plan := Choose(self.Traits, reply.Info.Traits, p.cfg.Budget)
	// Repeat probes a few times per RTT of the direct path (about half the
	// channel's, which goes through a relay), within the budget's interval:
	// the first probes of both sides often meet the NATs before the other
	// side's mapping exists, and the next round should not wait long.
	if iv := min(max(rtt/8, 2*time.Millisecond), p.cfg.Budget.Interval); iv > 0 {
		plan.Interval = uint16(iv / time.Millisecond)
	}
	if o.plan != nil {
		plan = *o.plan
	}
	a.mu.Lock()
	a.peer = reply.Info
	a.plan = plan
	a.mu.Unlock()
	a.prepare()
	sync := (&Packet{Kind: KindSync, ID: a.id, Plan: plan}).Append(nil)
	ch.WritePacket(sync)
	res := &Result{ID: a.id, Initiator: true, Strategy: plan.Strategy, ChannelRTT: rtt, Self: self, Peer: reply.Info, Plan: plan, Channel: ch}
	if plan.Strategy == None {
		p.unregister(a)
		res.Err = fmt.Errorf("%w: %s and %s cannot punch", ErrNoPath, describe(self.Traits), describe(reply.Info.Traits))
		return res, nil
	}
	// The SYNC reaches the peer after about half the RTT: start then. A
	// second SYNC covers the loss of the first.
	select {
	case <-time.After(rtt / 2):
	case <-ctx.Done():
		a.finish(nil)
		return nil, ctx.Err()
	}
	go func() {
		select {
		case <-time.After(max(rtt, 20*time.Millisecond)):
			ch.WritePacket(sync)
		case <-a.wonCh:
		}
	}()
	a.run(ctx, res)
	return res, nil
}

// coordinate sends CONNECT until the REPLY comes (retransmitted from
// 250 ms on, doubling) and returns it with the channel's RTT: from the
// sending of the CONNECT that was answered to the REPLY, less the time the
// responder held it.
func (a *attempt) coordinate(ctx context.Context, self Info) (Packet, time.Duration, error) {
	p := a.p
	ctx, cancel := context.WithTimeout(ctx, p.cfg.CoordinationTimeout)
	defer cancel()
	sent := map[uint16]time.Time{}
	rto := 250 * time.Millisecond
	for seq := uint16(1); ; seq++ {
		msg := Packet{Kind: KindConnect, ID: a.id, Info: self}
		msg.Info.Seq = seq
		sent[seq] = p.clk.Now()
		if err := a.ch.WritePacket(msg.Append(nil)); err != nil {
			return Packet{}, 0, fmt.Errorf("punch: sending CONNECT: %w", err)
		}
		t := time.NewTimer(rto)
	wait:
		for {
			select {
			case pk := <-a.signals:
				at, ok := sent[pk.Info.Seq]
				switch {
				case pk.Kind == KindReply && ok:
					t.Stop()
					rtt := p.clk.Now().Sub(at) - time.Duration(pk.Info.Hold)*time.Millisecond
					return pk, max(rtt, 0), nil
				case pk.Kind == KindCancel:
					t.Stop()
					return Packet{}, 0, ErrCanceled
				}
			case <-t.C:
				rto = min(2*rto, 2*time.Second)
				break wait
			case <-ctx.Done():
				t.Stop()
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					return Packet{}, 0, ErrTimeout
				}
				return Packet{}, 0, ctx.Err()
			case <-p.done:
				t.Stop()
				return Packet{}, 0, ErrClosed
			}
		}
	}
}

// respond runs the responder's side of an attempt a CONNECT started.
func (p *Puncher) respond(connect Packet, ch Channel) {
	a := p.newAttempt(connect.ID, false, ch)
	if err := p.register(a); err != nil {
		ch.WritePacket((&Packet{Kind: KindCancel, ID: connect.ID, Reason: 1}).Append(nil))
		return
	}
	arrived := p.clk.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.CoordinationTimeout+p.cfg.Budget.Duration)
		defer cancel()
		res := &Result{ID: a.id, Channel: ch, Peer: connect.Info}
		self, err := p.cfg.Self(ctx)
		if err != nil {
			ch.WritePacket((&Packet{Kind: KindCancel, ID: a.id, Reason: 2}).Append(nil))
			p.unregister(a)
			res.Err = fmt.Errorf("punch: describing this host: %w", err)
			p.deliver(res)
			return
		}
		res.Self = self
		a.mu.Lock()
		a.self, a.peer = self, connect.Info
		// The initiator's plan is sent in the SYNC; the one Choose gives
		// now lets the hard side open its sockets before.
		a.plan = Choose(connect.Info.Traits, self.Traits, p.cfg.Budget)
		a.mu.Unlock()
		a.prepare()
		reply := func(seq uint16, since time.Time) {
			m := Packet{Kind: KindReply, ID: a.id, Info: self}
			m.Info.Seq = seq
			m.Info.Hold = uint16(min(p.clk.Now().Sub(since)/time.Millisecond, 65535))
			ch.WritePacket(m.Append(nil))
		}
		reply(connect.Info.Seq, arrived)
		for {
			select {
			case pk := <-a.signals:
				switch pk.Kind {
				case KindConnect:
					reply(pk.Info.Seq, p.clk.Now())
					continue
				case KindCancel:
					res.Err = ErrCanceled
				case KindSync:
					a.mu.Lock()
					a.plan = pk.Plan
					a.mu.Unlock()
					res.Plan, res.Strategy = pk.Plan, pk.Plan.Strategy
					if pk.Plan.Strategy == None {
						res.Err = fmt.Errorf("%w: the initiator's plan is the relay", ErrNoPath)
						break
					}
					a.run(ctx, res)
				default:
					continue
				}
			case <-ctx.Done():
				res.Err = ErrTimeout
			case <-p.done:
				res.Err = ErrClosed
			}
			break
		}
		if res.Path == nil {
			a.finish(nil)
		}
		p.deliver(res)
	}()
}

func (p *Puncher) deliver(r *Result) {
	select {
	case p.results <- r:
	default:
		p.log.Debug("punch: result dropped (nobody accepts)", "id", fmt.Sprintf("%x", r.ID[:4]))
		if r.Path != nil {
			r.Path.Close()
		}
	}
}

// hardSide reports whether the plan puts the work on this side.
func (a *attempt) hardSide() bool {
	bit := HardResponder
	if a.initiator {
		bit = HardInitiator
	}
	return a.plan.Hard&bit != 0
}

// prepare opens the birthday sockets when this side is the hard one
// (before the SYNC, so that they are ready when the punching starts).
func (a *attempt) prepare() {
	a.mu.Lock()
	need := a.plan.Strategy == Birthday && a.hardSide() && a.aux == nil
	n := int(a.plan.Sockets)
	a.mu.Unlock()
	if !need || n == 0 {
		return
	}
	conns, err := a.p.cfg.ListenAux(n)
	if err != nil {
		a.p.log.Debug("punch: opening birthday sockets", "err", err)
		return
	}
	socks := make([]*sock, len(conns))
	for i, c := range conns {
		s := &sock{port: a.p.port, conn: c}
		socks[i] = s
		go a.p.readAux(s)
	}
	a.mu.Lock()
	a.aux = socks
	a.mu.Unlock()
}

// readAux reads an extra socket until it is closed: punch packets go to
// the Puncher, others to the path that owns the socket (if any).
func (p *Puncher) readAux(s *sock) {
	buf := make([]byte, 65536)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if n == 0 {
			continue
		}
		pkt := buf[:n]
		if pkt[0] == transport.TypePunch {
			p.receive(pkt, from, s)
			continue
		}
		if pa := s.path(); pa != nil && from == pa.peer {
			pa.deliver(pkt)
		}
	}
}

// run punches by the plan until a win or the plan's time is up, and fills
// res.
func (a *attempt) run(ctx context.Context, res *Result) {
	p := a.p
	a.mu.Lock()
	plan := a.plan
	a.started = p.clk.Now()
	a.mu.Unlock()
	deadline := time.Duration(plan.Duration) * time.Millisecond
	interval := max(time.Duration(plan.Interval)*time.Millisecond, time.Millisecond)
	end := time.NewTimer(deadline)
	defer end.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	sched := a.schedule(interval, deadline)
	sched.round(a)
loop:
	for {
		select {
		case <-a.wonCh:
			break loop
		case <-tick.C:
			sched.round(a)
		case <-end.C:
			break loop
		case <-ctx.Done():
			break loop
		case <-p.done:
			break loop
		case pk := <-a.signals:
			if pk.Kind == KindCancel {
				break loop
			}
		}
	}
	a.mu.Lock()
	w := a.won
	res.Probes = a.probes
	a.mu.Unlock()
	res.Strategy = plan.Strategy
	res.Plan = plan
	if w == nil {
		a.finish(nil)
		if res.Err == nil {
			res.Err = fmt.Errorf("%w: %s punch with %s NAT: nothing answered in %s", ErrNoPath, plan.Strategy, describe(a.peer.Traits), deadline)
		}
		return
	}
	p.stats.succeeded.Add(1)
	res.Started = a.started
	res.Elapsed = w.at.Sub(a.started)
	res.ProbeRTT = w.rtt
	res.Path = a.finish(w)
	if a.initiator {
		go a.nominate(ctx, deadline)
	}
}

// nominate repeats the nominating PROBE on the winning pair until the
// responder acknowledges it or the plan's time is up, then retires the
// attempt (the path answers later probes).
func (a *attempt) nominate(ctx context.Context, deadline time.Duration) {
	defer a.p.unregister(a)
	interval := max(time.Duration(a.plan.Interval)*time.Millisecond, 5*time.Millisecond)
	stop := time.NewTimer(deadline)
	defer stop.Stop()
	for {
		a.mu.Lock()
		done := a.nominated
		w := a.won
		a.mu.Unlock()
		if done {
			return
		}
		a.sendProbe(w.s, w.addr, FlagNominate)
		select {
		case <-time.After(interval):
		case <-stop.C:
			return
		case <-ctx.Done():
			return
		case <-a.p.done:
			return
		}
	}
}

// finish ends the attempt: with a win, the path is registered (it
// answers PINGs and late PROBEs from then on) and its socket kept; every
// other extra socket closes. The responder's attempt, and a failed one,
// leave the table now; the initiator's once its nomination was answered.
func (a *attempt) finish(w *win) *Path {
	a.mu.Lock()
	if a.finished {
		a.mu.Unlock()
		return nil
	}
	a.finished = true
	aux := a.aux
	a.aux = nil
	a.mu.Unlock()
	var pa *Path
	if w != nil {
		pa = a.p.newPath(a.id, w.s, w.addr)
	}
	for _, s := range aux {
		if w == nil || s != w.s {
			s.conn.Close()
		}
	}
	if w == nil || !a.initiator {
		a.p.unregister(a)
	}
	return pa
}

// sendProbe sends one PROBE (numbered, its time kept for the RTT).
func (a *attempt) sendProbe(s *sock, to netip.AddrPort, flags byte) {
	a.mu.Lock()
	a.seq++
	seq := a.seq
	a.sentAt[seq] = a.p.clk.Now()
	a.probes++
	a.mu.Unlock()
	a.p.stats.probes.Add(1)
	s.write(AppendSeqFlags(nil, KindProbe, a.id, seq, flags), to)
}

// onProbe answers a peer's PROBE from where it came, and learns that
// address. A nominating PROBE makes the responder take that path.
func (a *attempt) onProbe(s *sock, from netip.AddrPort, flags byte, seq uint32) {
	s.write(AppendSeqFlags(nil, KindAck, a.id, seq, flags&FlagNominate), from)
	a.mu.Lock()
	known := false
	for _, l := range a.learned {
		if l == from {
			known = true
			break
		}
	}
	if !known && len(a.learned) < 16 {
		a.learned = append(a.learned, from)
	}
	var won bool
	if !a.initiator && flags&FlagNominate != 0 && a.won == nil && !a.finished {
		a.won = &win{s: s, addr: from, at: a.p.clk.Now()}
		won = true
	}
	a.mu.Unlock()
	if won {
		close(a.wonCh)
	}
}

// onAck: for the initiator, the first ACK wins (and the nomination starts);
// an ACK with the nomination flag ends it.
func (a *attempt) onAck(s *sock, from netip.AddrPort, flags byte, seq uint32) {
	if !a.initiator {
		return
	}
	now := a.p.clk.Now()
	a.mu.Lock()
	var won bool
	if a.won == nil && !a.finished {
		rtt := time.Duration(0)
		if at, ok := a.sentAt[seq]; ok {
			rtt = now.Sub(at)
		}
		a.won = &win{s: s, addr: from, rtt: rtt, at: now}
		won = true
	}
	if flags&FlagNominate != 0 && a.won != nil && a.won.s == s && a.won.addr == from {
		a.nominated = true
	}
	a.mu.Unlock()
	if won {
		close(a.wonCh)
	}
}

// schedule is the probe schedule of a plan for one side.
type schedule struct {
	direct   []netip.AddrPort // probed every round from the port
	ordered  []netip.AddrPort // probed in this order, each round (prediction: one new mapping each)
	auxTo    netip.AddrPort   // where the extra sockets send (hard birthday side)
	auxEvery int              // rounds between the extra sockets' sends
	random   []netip.AddrPort // birthday probes, sent once each, perRound a round
	perRound int
	rounds   int
}

// schedule works out what this side sends, from the plan and both Infos.
func (a *attempt) schedule(interval, deadline time.Duration) *schedule {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := &schedule{}
	peerCands := a.peer.Candidates
	if len(peerCands) == 0 {
		return s
	}
	first := peerCands[0]
	switch a.plan.Strategy {
	case Direct:
		s.direct = reachable(peerCands, a.self.Candidates)
	case Predict:
		mine, theirs := a.hardSide(), a.plan.Hard&^a.myBit() != 0
		switch {
		case mine && theirs:
			s.ordered = predicted(first.Addr(), a.peer.Traits, int(a.plan.Probes))
		case mine:
			// One flow towards the peer: it gets our predicted port.
			s.direct = []netip.AddrPort{first}
		case theirs:
			s.direct = append([]netip.AddrPort{first}, predicted(first.Addr(), a.peer.Traits, int(a.plan.Probes))...)
		}
	case Birthday:
		if a.hardSide() {
			s.auxTo = first
			s.auxEvery = max(1, int(200*time.Millisecond/interval))
			s.direct = []netip.AddrPort{first}
		} else {
			s.direct = reachable(peerCands, a.self.Candidates)
			n := int(a.plan.Probes)
			ports := rand.Perm(65536 - 1024)
			for i := 0; i < n && i < len(ports); i++ {
				s.random = append(s.random, netip.AddrPortFrom(first.Addr(), uint16(ports[i]+1024)))
			}
			// Spread the probes over half the time, so that the hard side's
			// mappings exist when most of them arrive.
			rounds := max(1, int(deadline/2/interval))
			s.perRound = (n + rounds - 1) / rounds
		}
	}
	return s
}

func (a *attempt) myBit() uint8 {
	if a.initiator {
		return HardInitiator
	}
	return HardResponder
}

// round sends one round of the schedule.
func (s *schedule) round(a *attempt) {
	a.mu.Lock()
	learned := append([]netip.AddrPort(nil), a.learned...)
	aux := a.aux
	a.mu.Unlock()
	main := &sock{port: a.p.port}
	for _, to := range s.ordered {
		a.sendProbe(main, to, 0)
	}
	for _, to := range s.direct {
		a.sendProbe(main, to, 0)
	}
	for _, to := range learned {
		if !contains(s.direct, to) {
			a.sendProbe(main, to, 0)
		}
	}
	if s.auxTo.IsValid() && s.rounds%s.auxEvery == 0 {
		for _, x := range aux {
			a.sendProbe(x, s.auxTo, 0)
		}
	}
	for i := 0; i < s.perRound && len(s.random) > 0; i++ {
		a.sendProbe(main, s.random[0], 0)
		s.random = s.random[1:]
	}
	s.rounds++
}

func contains(l []netip.AddrPort, a netip.AddrPort) bool {
	for _, x := range l {
		if x == a {
			return true
		}
	}
	return false
}

// reachable filters the peer's candidates to those worth probing: public
// ones always; private ones only when the peer's first (public) address
// is one of ours (the same NAT), since elsewhere they name someone else.
func reachable(peer, self []netip.AddrPort) []netip.AddrPort {
	sameNAT := len(peer) > 0 && len(self) > 0 && peer[0].Addr() == self[0].Addr()
	var out []netip.AddrPort
	for _, c := range peer {
		if !c.IsValid() || c.Addr().IsUnspecified() {
			continue
		}
		if isPrivate(c.Addr()) && !sameNAT {
			continue
		}
		out = append(out, c)
	}
	return out
}

func isPrivate(ip netip.Addr) bool {
	return ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast()
}

// predicted lists the next n ports a sequential NAT will hand out at ip.
func predicted(ip netip.Addr, t Traits, n int) []netip.AddrPort {
	step := int(t.Step)
	if step == 0 {
		step = 1
	}
	out := make([]netip.AddrPort, 0, n)
	port := int(t.LastPort)
	for range n {
		port += step
		if port < 1024 || port > 65535 {
			break
		}
		out = append(out, netip.AddrPortFrom(ip, uint16(port)))
	}
	return out
}

func describe(t Traits) string {
	if t.NoNAT {
		return "no"
	}
	s := fmt.Sprintf("%sM/%sF", t.Mapping.Short(), t.Filtering.Short())
	if t.Alloc != AllocUnknown {
		s += " " + t.Alloc.String()
	}
	return s
}
