package community

import (
	"net/netip"

	"github.com/ipv8/go-ipv8/discovery"
)

// wanVote learns this host's public address from what peers report seeing
// (the destination of their introduction responses): each of the last
// maxVoters peers has one vote, reports of private addresses are ignored,
// and the address with most votes wins (on a tie, the latest reported).
type wanVote struct {
	voters []vote // oldest first
	best   netip.AddrPort
}

type vote struct {
	by   discovery.Mid
	addr netip.AddrPort
}

const maxVoters = 24

func (w *wanVote) add(by discovery.Mid, addr netip.AddrPort) {
	addr = unmap(addr)
	if !addr.IsValid() || isPrivate(addr.Addr()) || addr.Port() == 0 {
		return
	}
	for i, v := range w.voters {
		if v.by == by {
			w.voters = append(w.voters[:i], w.voters[i+1:]...)
			break
		}
	}
	if len(w.voters) >= maxVoters {
		w.voters = append(w.voters[:0], w.voters[1:]...)
	}
	w.voters = append(w.voters, vote{by, addr})
	w.recount()
}

func (w *wanVote) recount() {
	counts := make(map[netip.AddrPort]int, len(w.voters))
	bestN := 0
	for _, v := range w.voters { // later votes win ties
		counts[v.addr]++
		if n := counts[v.addr]; n >= bestN {
			bestN, w.best = n, v.addr
		}
	}
}

func (w *wanVote) current() netip.AddrPort { return w.best }
