package noise

import (
	"github.com/ipv8/go-ipv8/peer"
	"github.com/ipv8/go-ipv8/security"
)

// SessionWith returns the live session with p, if there is one: NAT
// traversal finds there the session a relayed connection runs on, to move
// it to a punched path (PathSetter).
func (t *Transport) SessionWith(p peer.ID) (security.Session, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sessions[p]
	if s == nil || s.isClosed() {
		return nil, false
	}
	return s, true
}

var _ security.PathDialer = (*Transport)(nil)
var _ security.PathSetter = (*session)(nil)
