package noise

import (
	"encoding/binary"
	"io"
	"sync"
)

// indexEntry is what a receiver index names: a keypair (data packets), an
// initiator's handshake (responses, cookie replies) or a responder's
// half-open XX handshake (third messages).
type indexEntry struct {
	kp *keypair
	hs *handshake
	in *inbound
}

// indexTable maps the 32-bit receiver indexes we hand out to their owners.
// Indexes are random so that an off-path attacker cannot guess the live
// ones; a handshake's index becomes its keypair's (as in WireGuard), so a
// retransmitted third message finds the session it created.
type indexTable struct {
	mu  sync.RWMutex
	m   map[uint32]indexEntry
	rng io.Reader
}

func newIndexTable(rng io.Reader) *indexTable {
	return &indexTable{m: make(map[uint32]indexEntry), rng: rng}
}

// add reserves a fresh index for e.
func (t *indexTable) add(e indexEntry) (uint32, error) {
	var b [4]byte
	for {
		if _, err := io.ReadFull(t.rng, b[:]); err != nil {
			return 0, err
		}
		idx := binary.BigEndian.Uint32(b[:])
		t.mu.Lock()
		if _, taken := t.m[idx]; !taken {
			t.m[idx] = e
			t.mu.Unlock()
			return idx, nil
		}
		t.mu.Unlock()
	}
}

// replace points an existing index at e (a handshake becoming a keypair).
func (t *indexTable) replace(idx uint32, e indexEntry) {
	t.mu.Lock()
	t.m[idx] = e
	t.mu.Unlock()
}

func (t *indexTable) get(idx uint32) (indexEntry, bool) {
	t.mu.RLock()
	e, ok := t.m[idx]
	t.mu.RUnlock()
	return e, ok
}

// removeIf deletes idx if it still names owner (a *keypair, *handshake or
// *inbound), so that a stale removal cannot drop a reused index.
func (t *indexTable) removeIf(idx uint32, owner any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[idx]
	if !ok {
		return
	}
	switch o := owner.(type) {
	case *keypair:
		if e.kp != o {
			return
		}
	case *handshake:
		if e.hs != o {
			return
		}
	case *inbound:
		if e.in != o {
			return
		}
	}
	delete(t.m, idx)
}

func (t *indexTable) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}
