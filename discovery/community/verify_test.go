package community

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"filippo.io/edwards25519"

	"github.com/ipv8/go-ipv8/discovery/community/wire"
	"github.com/ipv8/go-ipv8/peer"
)

var batchCID = wire.CommunityID{'b', 'a', 't', 'c', 'h'}

// batchRig is an endpoint (queued, the default) with one community whose
// handler for signed message 1 records the global times it is given.
type batchRig struct {
	port *recPort
	ep   *Endpoint
	c    *Community

	mu  sync.Mutex
	got []uint64
}

func newBatchRig(t *testing.T, cfg EndpointConfig) *batchRig {
	t.Helper()
	r := &batchRig{port: &recPort{}}
	if cfg.Keys == nil {
		cfg.Keys = NewKeyCacheWith(KeyCacheConfig{Size: 512, Tables: -1})
	}
	r.ep = NewEndpointWith(r.port, cfg)
	key, _ := peer.NewKeyFromSeed(make([]byte, 32))
	c, err := New(r.ep, Config{ID: batchCID, Key: key, AnswerOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	if err := c.Handle(1, true, func(m *Message) {
		r.mu.Lock()
		r.got = append(r.got, m.GlobalTime)
		r.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *batchRig) delivered() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.got...)
}

// signedFrom returns n signed message-1 packets, packet i from sender i
// with global time i+1.
func signedFrom(t testing.TB, n int) [][]byte {
	t.Helper()
	pkts := make([][]byte, n)
	for i := range pkts {
		k, err := peer.NewKeyFromSeed(append(make([]byte, 30), 7, byte(i)))
		if err != nil {
			t.Fatal(err)
		}
		pkts[i] = wire.NewSigner(k).AppendSigned(nil, batchCID, 1, uint64(i+1), []byte("payload"))
	}
	return pkts
}

func inbounds(pkts [][]byte) []inbound {
	in := make([]inbound, len(pkts))
	for i, p := range pkts {
		in[i] = inbound{p, netip.MustParseAddrPort("1.2.3.4:5")}
	}
	return in
}

func TestBatchWithOneForgedSignatureDeliversTheOther63(t *testing.T) {
	r := newBatchRig(t, EndpointConfig{})
	pkts := signedFrom(t, 64)
	const forged = 17
	pkts[forged][len(pkts[forged])-40] ^= 0x01 // a byte of S
	r.ep.process(inbounds(pkts), &r.ep.work)

	got := r.delivered()
	if len(got) != 63 {
		t.Fatalf("delivered %d, want 63", len(got))
	}
	for i, gt := range got {
		want := uint64(i + 1)
		if i >= forged {
			want++
		}
		if gt != want {
			t.Fatalf("delivery %d has global time %d, want %d (order kept, forged one left out)", i, gt, want)
		}
	}
	st, es := r.c.Stats(), r.ep.Stats()
	if st.BadSignature != 1 || st.Delivered != 63 {
		t.Fatalf("stats %+v: want 1 bad signature, 63 delivered", st)
	}
	if es.Batches != 1 || es.BatchFailures != 1 {
		t.Fatalf("endpoint stats %+v: want one batch, failed", es)
	}
	// The failure halved the batch size; a good batch grows it by 8.
	if r.ep.work.v.size != maxBatch/2 {
		t.Fatalf("batch size after a failure %d, want %d", r.ep.work.v.size, maxBatch/2)
	}
	r.ep.process(inbounds(signedFrom(t, 64)), &r.ep.work)
	if es := r.ep.Stats(); es.Batches != 2 || es.BatchFailures != 1 || r.c.Stats().Delivered != 63+64 || r.ep.work.v.size != maxBatch/2+8 {
		t.Fatalf("after a good round: %+v, delivered %d, size %d", es, r.c.Stats().Delivered, r.ep.work.v.size)
	}
}

// Under a stream of forgeries the batch size shrinks to one by one: the
// forgeries are each dropped, the good ones delivered, and few batches are
// wasted.
func TestForgeryStreamShrinksBatchesToOneByOne(t *testing.T) {
	r := newBatchRig(t, EndpointConfig{})
	pkts := signedFrom(t, 256)
	for i := 0; i < len(pkts); i += 2 {
		pkts[i][len(pkts[i])-40] ^= 0x01 // a byte of S, which stays canonical
	}
	for i := 0; i < len(pkts); i += 32 {
		r.ep.process(inbounds(pkts[i:i+32]), &r.ep.work)
	}
	st, es := r.c.Stats(), r.ep.Stats()
	if st.BadSignature != 128 || st.Delivered != 128 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("%d batches, %d failed, size now %d", es.Batches, es.BatchFailures, r.ep.work.v.size)
	if es.BatchFailures > 64 || r.ep.work.v.size > 2 {
		t.Fatalf("%d failed batches, size now %d: the size did not shrink", es.BatchFailures, r.ep.work.v.size)
	}
}

func TestBatchOfGoodSignaturesIsCheckedOnce(t *testing.T) {
	r := newBatchRig(t, EndpointConfig{})
	r.ep.process(inbounds(signedFrom(t, 128)), &r.ep.work)
	if n := len(r.delivered()); n != 128 {
		t.Fatalf("delivered %d of 128", n)
	}
	if es := r.ep.Stats(); es.Batches != 1 || es.BatchFailures != 0 {
		t.Fatalf("endpoint stats %+v", es)
	}
}

// Packets handed to the port's handler are queued, handled by the worker
// in arrival order, and all delivered (Flush waits for them).
func TestQueuedPacketsAreDeliveredInOrder(t *testing.T) {
	r := newBatchRig(t, EndpointConfig{})
	pkts := signedFrom(t, 300)
	for _, p := range pkts {
		buf := append([]byte(nil), p...)
		r.port.h(buf, netip.MustParseAddrPort("1.2.3.4:5"))
		clear(buf) // the port reuses its buffers: the endpoint must have copied
	}
	r.ep.Flush(t.Context())
	got := r.delivered()
	if len(got) != len(pkts) {
		t.Fatalf("delivered %d of %d (stats %+v, %+v)", len(got), len(pkts), r.c.Stats(), r.ep.Stats())
	}
	for i, gt := range got {
		if gt != uint64(i+1) {
			t.Fatalf("delivery %d has global time %d", i, gt)
		}
	}
}

// A full queue drops what arrives and counts it; the read goroutine never
// waits.
func TestFullQueueDropsAndCounts(t *testing.T) {
	r := newBatchRig(t, EndpointConfig{QueueLimit: 16})
	release := make(chan struct{})
	first := make(chan struct{}, 1)
	r.c.Handle(2, false, func(*Message) {
		first <- struct{}{}
		<-release
	})
	r.port.h(wire.AppendUnsigned(nil, batchCID, 2, 1, nil), netip.MustParseAddrPort("1.2.3.4:5"))
	<-first // the worker is now held in the handler
	pkts := signedFrom(t, 40)
	for _, p := range pkts {
		r.port.h(p, netip.MustParseAddrPort("1.2.3.4:5"))
	}
	// Flush gives up when its context ends while the worker is held.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := r.ep.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush with a held worker: %v", err)
	}
	close(release)
	if err := r.ep.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, over := len(r.delivered()), r.ep.Stats().Overflow; got != 16 || over != 24 {
		t.Fatalf("delivered %d, overflow %d: want 16 and 24", got, over)
	}
}

// torsion8 is a point of order 8.
func torsion8(t testing.TB) *edwards25519.Point {
	b, _ := hex.DecodeString("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
	p, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// craftSigned builds a signed message-1 packet for the Ed25519 point A with
// a signature S = r + k·a over nonce point R (the caller may give A and R
// torsion components that a, r do not account for).
func craftSigned(A, R *edwards25519.Point, a, r *edwards25519.Scalar, gt uint64) []byte {
	b := wire.AppendHeader(nil, batchCID, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(wire.KeySize))
	b = append(b, "LibNaCLPK:"...)
	b = append(b, make([]byte, 32)...) // X25519 half: not used here
	b = append(b, A.Bytes()...)
	b = binary.BigEndian.AppendUint64(b, gt)
	b = append(b, "payload"...)
	h := sha512.New()
	h.Write(R.Bytes())
	h.Write(A.Bytes())
	h.Write(b)
	k, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	S := edwards25519.NewScalar().MultiplyAdd(k, a, r)
	b = append(b, R.Bytes()...)
	return append(b, S.Bytes()...)
}

func randScalar(rng *rand.Rand) *edwards25519.Scalar {
	b := make([]byte, 64)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	s, _ := edwards25519.NewScalar().SetUniformBytes(b)
	return s
}

// A key with a torsion component never joins a batch: its signatures get
// crypto/ed25519's answer even in the middle of a batch of good ones
// (the cofactored batch equation would accept all of them).
func TestTorsionedKeyIsCheckedAloneWithCryptoEd25519Rule(t *testing.T) {
	r := newBatchRig(t, EndpointConfig{})
	rng := rand.New(rand.NewPCG(5, 6))
	T := torsion8(t)
	pkts := signedFrom(t, 32)
	wantAccepted := 32
	for i := range 32 {
		a, rr := randScalar(rng), randScalar(rng)
		A := new(edwards25519.Point).Add(new(edwards25519.Point).ScalarBaseMult(a), T)
		R := new(edwards25519.Point).ScalarBaseMult(rr)
		p := craftSigned(A, R, a, rr, uint64(1000+i))
		s, _ := wire.ParseSigned(p)
		if ed25519.Verify(A.Bytes(), s.SignedBytes(), s.Signature) {
			wantAccepted++
		}
		pkts = append(pkts, p)
	}
	if wantAccepted == 64 || wantAccepted == 32 {
		t.Fatalf("crypto/ed25519 accepts %d of 64: the case does not exercise both answers", wantAccepted)
	}
	r.ep.process(inbounds(pkts), &r.ep.work)
	if got := len(r.delivered()); got != wantAccepted {
		t.Fatalf("delivered %d, crypto/ed25519 accepts %d", got, wantAccepted)
	}
	if es := r.ep.Stats(); es.Batches != 1 || es.BatchFailures != 0 {
		t.Fatalf("the honest 32 must pass as one batch: %+v", es)
	}
}

// The one case where a batch and crypto/ed25519 differ (verify.go): a
// nonce point R with a small-order component, which only the key's holder
// can make. Checked alone (Inline endpoints, a batch of one, or after a
// failed batch) it is refused as crypto/ed25519 refuses it; in a batch
// that passes it is accepted. This test pins that down.
func TestTorsionedNonceIsRefusedAloneAndAcceptedByABatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	a, rr := randScalar(rng), randScalar(rng)
	A := new(edwards25519.Point).ScalarBaseMult(a)
	R := new(edwards25519.Point).Add(new(edwards25519.Point).ScalarBaseMult(rr), torsion8(t))
	odd := craftSigned(A, R, a, rr, 5000)
	s, _ := wire.ParseSigned(odd)
	if ed25519.Verify(A.Bytes(), s.SignedBytes(), s.Signature) {
		t.Fatal("crypto/ed25519 accepts the crafted signature: the case is not what it claims")
	}

	alone := newBatchRig(t, EndpointConfig{Inline: true})
	alone.port.h(odd, netip.MustParseAddrPort("1.2.3.4:5"))
	if len(alone.delivered()) != 0 || alone.c.Stats().BadSignature != 1 {
		t.Fatalf("checked alone: delivered %v, stats %+v", alone.delivered(), alone.c.Stats())
	}

	batched := newBatchRig(t, EndpointConfig{})
	batched.ep.process(inbounds(append(signedFrom(t, 15), odd)), &batched.ep.work)
	if got := batched.delivered(); len(got) != 16 || got[15] != 5000 {
		t.Fatalf("in a batch: delivered %v", got)
	}
}

// FuzzBatchVerify puts an arbitrary packet in the middle of a batch of
// seven good ones: the seven are delivered, and the packet is delivered
// exactly when crypto/ed25519 accepts its signature (its key parsed). (The
// one case where a batch and crypto/ed25519 differ, a torsioned R, needs
// the private key; a mutation cannot reach it.)
func FuzzBatchVerify(f *testing.F) {
	good := signedFrom(f, 8)
	f.Add(good[0])
	bad := append([]byte(nil), good[1]...)
	bad[len(bad)-1] ^= 0x80 // S no longer canonical
	f.Add(bad)
	bad = append([]byte(nil), good[2]...)
	bad[len(bad)-64] ^= 0x01 // R
	f.Add(bad)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		// Two of the keys get tables at once: both the table path and
		// voi's batch are exercised.
		r := newBatchRig(t, EndpointConfig{Keys: NewKeyCacheWith(KeyCacheConfig{Size: 64, Tables: 2, HotAfter: 1})})
		batch := append(append(append([][]byte{}, good[1:4]...), pkt), good[4:]...)
		r.ep.process(inbounds(batch), &r.ep.work)
		want := 7
		if len(pkt) >= wire.HeaderSize && pkt[0] == wire.PrefixByte && pkt[1] == wire.Version &&
			pkt[wire.HeaderSize-1] == 1 && wire.CommunityID(pkt[2:22]) == batchCID {
			if s, err := wire.ParseSigned(pkt); err == nil {
				if pub, err := peer.ParseLibNaCLPK(s.KeyBin); err == nil &&
					ed25519.Verify(pub.Ed25519(), s.SignedBytes(), s.Signature) &&
					pub.Mid() != r.c.Mid() {
					want++
				}
			}
		}
		if got := len(r.delivered()); got != want {
			t.Fatalf("delivered %d, want %d", got, want)
		}
	})
}

// A hot sender's key earns a table; its packets in a batch are then checked
// with the table (one shared inversion), exactly: a forgery among them is
// dropped and counted, the rest delivered in order.
func TestHotKeyPacketsUseItsTableAndDropForgery(t *testing.T) {
	r := newBatchRig(t, EndpointConfig{Keys: NewKeyCacheWith(KeyCacheConfig{Size: 64, Tables: 2, HotAfter: 4})})
	k, _ := peer.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	s := wire.NewSigner(k)
	var pkts [][]byte
	for i := range 70 {
		pkts = append(pkts, s.AppendSigned(nil, batchCID, 1, uint64(i+1), []byte("hot")))
	}
	r.ep.process(inbounds(pkts[:6]), &r.ep.work) // earns the table
	e, _ := r.ep.keys.entry(s.KeyBin())
	if e.fv.Load() == nil {
		t.Fatal("a sender of 6 packets at once did not earn a table (HotAfter 4)")
	}
	pkts[40][len(pkts[40])-50] ^= 0x10 // a byte of S
	r.ep.process(inbounds(pkts[6:]), &r.ep.work)
	got := r.delivered()
	if len(got) != 69 || r.c.Stats().BadSignature != 1 {
		t.Fatalf("delivered %d, bad %d: want 69 and 1", len(got), r.c.Stats().BadSignature)
	}
	for i, gt := range got {
		want := uint64(i + 1)
		if i >= 40 {
			want++
		}
		if gt != want {
			t.Fatalf("delivery %d has global time %d, want %d", i, gt, want)
		}
	}
	if es := r.ep.Stats(); es.Batches != 1 {
		// Only the first 6 (before the table) formed a voi batch.
		t.Fatalf("endpoint stats %+v: the tabled packets must not go to voi's batch", es)
	}
}
