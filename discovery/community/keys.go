package community

import (
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/oasisprotocol/curve25519-voi/curve"
	voied "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/ipv8/go-ipv8/discovery/community/internal/fastverify"
	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/peer"
)

// KeyCache keeps the parsed public keys of recent senders, so that a
// packet's 74-byte key is decompressed once, not per packet, and expanded
// for curve25519-voi (about 1.5 KiB: a small table of odd multiples of −A
// that both single and batch verification use); and for the keys that send
// most it keeps fixed-base tables (see internal/fastverify) that make a
// signature check about 3.5 times faster than crypto/ed25519's.
//
// A table costs as much to build as 15–20 checks and takes 284 KiB, so a
// key earns one by rate, not by count: HotAfter verifications within one
// second (wall clock). At most Tables keys hold one; when all are taken, a
// new hot key takes the table of the coldest holder only if it is more than
// twice as hot, so that many equally busy senders do not trade tables back
// and forth. It is safe for concurrent use and may be shared by many
// endpoints (a simulation of thousands of hosts shares one, without
// tables).
type KeyCache struct {
	c        *lru.Cache[[wire.KeySize]byte, *keyEntry]
	hotAfter uint32
	now      func() time.Time

	mu     sync.Mutex
	tables []*keyEntry // the keys holding a table
}

// KeyCacheConfig sizes a KeyCache; zero values take the defaults.
type KeyCacheConfig struct {
	Size     int // keys kept (4096)
	Tables   int // keys with a verification table (16); negative for none
	HotAfter int // verifications in a second that earn a table (32)
}

const rateWindow = int64(time.Second)

type keyEntry struct {
	pub *peer.PublicKey
	vx  *voied.ExpandedPublicKey
	fv  atomic.Pointer[fastverify.Key] // set while the key holds a table

	// batchable: the key may join a batch (see verify.go); worked out on
	// its first batch, since the check costs as much as a verification.
	batchOnce sync.Once
	batchable bool

	// Verifications in the current and the previous one-second window.
	mu        sync.Mutex
	win       int64
	cur, prev uint32
}

// use counts one verification and returns the count of the current window.
func (e *keyEntry) use(now int64) uint32 {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.roll(now)
	e.cur++
	return e.cur
}

// rate is the verifications of the last one to two seconds.
func (e *keyEntry) rate(now int64) uint32 {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.roll(now)
	return e.cur + e.prev
}

func (e *keyEntry) roll(now int64) {
	w := now / rateWindow
	switch {
	case w == e.win:
	case w == e.win+1:
		e.win, e.prev, e.cur = w, e.cur, 0
	default:
		e.win, e.prev, e.cur = w, 0, 0
	}
}

// NewKeyCache returns a cache of at most size keys, with the default table
// settings.
func NewKeyCache(size int) *KeyCache { return NewKeyCacheWith(KeyCacheConfig{Size: size}) }

// NewKeyCacheWith returns a cache configured by cfg.
func NewKeyCacheWith(cfg KeyCacheConfig) *KeyCache {
	if cfg.Size < 1 {
		cfg.Size = 4096
	}
	if cfg.Tables == 0 {
		cfg.Tables = 16
	}
	if cfg.HotAfter <= 0 {
		cfg.HotAfter = 32
	}
	c, _ := lru.New[[wire.KeySize]byte, *keyEntry](cfg.Size)
	k := &KeyCache{c: c, hotAfter: uint32(cfg.HotAfter), now: time.Now}
	if cfg.Tables > 0 {
		k.tables = make([]*keyEntry, 0, cfg.Tables)
	}
	return k
}

var sharedKeys = NewKeyCache(4096)

func (k *KeyCache) entry(bin []byte) (*keyEntry, error) {
	if len(bin) != wire.KeySize {
		return nil, wire.ErrUnsupportedKey
	}
	a := [wire.KeySize]byte(bin)
	if e, ok := k.c.Get(a); ok {
		return e, nil
	}
	pub, err := peer.ParseLibNaCLPK(bin)
	if err != nil {
		return nil, err
	}
	vx, err := voied.NewExpandedPublicKey(voied.PublicKey(pub.Ed25519()))
	if err != nil {
		return nil, wire.ErrUnsupportedKey
	}
	e := &keyEntry{pub: pub, vx: vx}
	k.c.Add(a, e)
	return e, nil
}

// Parse returns the key of a LibNaCLPK encoding.
func (k *KeyCache) Parse(bin []byte) (*peer.PublicKey, error) {
	e, err := k.entry(bin)
	if err != nil {
		return nil, err
	}
	return e.pub, nil
}

// Verify checks the signature of a parsed signed message and returns the
// sender's key. The error wraps wire.ErrBadSignature or wire.ErrMalformed.
func (k *KeyCache) Verify(s *wire.Signed) (*peer.PublicKey, error) {
	e, err := k.entry(s.KeyBin)
	if err != nil {
		return nil, err
	}
	k.count(e)
	if !e.verify(s) {
		return nil, wire.ErrBadSignature
	}
	return e.pub, nil
}

// count counts a verification by e and gives e a table when it earns one.
func (k *KeyCache) count(e *keyEntry) {
	if cap(k.tables) > 0 {
		// Holders count too: their rate is what a newcomer must beat.
		now := k.now().UnixNano()
		if e.use(now) == k.hotAfter && e.fv.Load() == nil {
			k.admit(e, now)
		}
	}
}

// verify checks one signature with crypto/ed25519's rule: through the
// key's table if it holds one, else with voi's StdLib options.
func (e *keyEntry) verify(s *wire.Signed) bool {
	if fv := e.fv.Load(); fv != nil {
		return fv.Verify(s.SignedBytes(), s.Signature)
	}
	return len(s.Signature) == voied.SignatureSize &&
		voied.VerifyExpandedWithOptions(e.vx, s.SignedBytes(), s.Signature, peer.StdLibVerifyOptions())
}

// canBatch reports whether e's signatures may be checked in a batch: its
// point is canonically encoded and has no small-order component. Batch
// verification checks the cofactored equation; for such a key it differs
// from crypto/ed25519's cofactorless one only on signatures whose R was
// made with a small-order component, which only the key's holder can make
// (see verify.go).
func (e *keyEntry) canBatch() bool {
	e.batchOnce.Do(func() {
		var c curve.CompressedEdwardsY
		var p curve.EdwardsPoint
		if _, err := c.SetBytes(e.pub.Ed25519()); err != nil || !c.IsCanonicalVartime() {
			return
		}
		if _, err := p.SetCompressedY(&c); err != nil {
			return
		}
		e.batchable = !p.IsSmallOrder() && p.IsTorsionFree()
	})
	return e.batchable
}

// admit gives e a table if there is room, or if e is more than twice as
// hot as the coldest holder, whose table it takes.
func (k *KeyCache) admit(e *keyEntry, now int64) {
	k.mu.Lock()
	if len(k.tables) < cap(k.tables) {
		k.tables = append(k.tables, e)
		k.mu.Unlock()
		e.precompute()
		return
	}
	coldest, coldRate := -1, uint32(0)
	for i, v := range k.tables {
		if r := v.rate(now); coldest < 0 || r < coldRate {
			coldest, coldRate = i, r
		}
	}
	if e.rate(now) <= 2*coldRate {
		k.mu.Unlock()
		return
	}
	v := k.tables[coldest]
	k.tables[coldest] = e
	k.mu.Unlock()
	v.fv.Store(nil)
	e.precompute()
}

// precompute builds e's table.
func (e *keyEntry) precompute() {
	fv, err := fastverify.NewKey(e.pub.Ed25519())
	if err != nil {
		return // not a curve point: ParseLibNaCLPK would have refused it
	}
	fv.Precompute()
	e.fv.Store(fv)
}
