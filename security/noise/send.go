package noise

import (
	"fmt"

	"github.com/ipv8/go-ipv8/security"
)

// Send encrypts b and sends it to the peer. On the fast path (current keys
// usable, path validated) it takes a pooled buffer, seals into it and
// writes it: no allocation and no lock but the keys' read lock.
func (s *session) Send(b []byte) error {
	if len(b) > s.MaxPayload() {
		return fmt.Errorf("%w: %d bytes, at most %d", security.ErrTooLarge, len(b), s.MaxPayload())
	}
	return s.sendKind(KindData, b)
}

// SendBatch sends several payloads (mux.BatchSender). With a batch writer
// installed (Transport.SetBatchWriter) and the fast path open, they are
// sealed into pooled buffers and written with one call (sendmmsg on Linux);
// otherwise one by one. It returns how many were sent; on an error the
// rest were not.
func (s *session) SendBatch(payloads [][]byte) (int, error) {
	t := s.t
	w := t.batchWriter.Load()
	kp := s.cur.Load()
	ps := s.path.Load()
	if w == nil || ps.direct == nil || kp == nil || kp.rekeyDue.Load() || !ps.validated.Load() || s.closedFlag.Load() ||
		kp.sendCounter.Load()+uint64(len(payloads)) >= t.cfg.RekeyAfterMessages {
		return s.sendEach(payloads)
	}
	max := s.MaxPayload()
	for _, b := range payloads {
		if len(b) > max {
			return s.sendEach(payloads) // reports ErrTooLarge at the right index
		}
	}
	aes := t.aesOK()
	bb := t.getBatch()
	defer t.putBatch(bb)
	sent := 0
	for sent < len(payloads) {
		n := min(len(payloads)-sent, maxBatch)
		// The packets are sealed back to back into one buffer: the port
		// can then hand the kernel a run of them as one GSO send.
		bb.pkts = bb.pkts[:0]
		buf := bb.buf[:0]
		ctr := kp.sendCounter.Add(uint64(n)) - uint64(n)
		buf, sealed := kp.sealRun(buf, &bb.nonce, &bb.pkts, ctr, payloads[sent:sent+n], aes)
		if sealed < n {
			// The keys were wiped meanwhile: send the rest one by one.
			k, err := s.sendEach(payloads[sent+sealed:])
			if sealed > 0 {
				if m, werr := (*w)(bb.pkts, ps.direct.addr); werr != nil {
					return sent + m, werr
				}
			}
			return sent + sealed + k, err
		}
		bb.buf = buf[:0]
		m, err := (*w)(bb.pkts, ps.direct.addr)
		bytes := 0
		for _, p := range bb.pkts[:m] {
			bytes += len(p)
		}
		t.stats.packetsSent.Add(uint64(m))
		t.stats.bytesSent.Add(uint64(bytes))
		sent += m
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

func (s *session) sendEach(payloads [][]byte) (int, error) {
	for i, b := range payloads {
		if err := s.Send(b); err != nil {
			return i, err
		}
	}
	return len(payloads), nil
}

// maxBatch bounds the packets handed to the batch writer at once.
const maxBatch = 64

// batchBufs is the pooled scratch of one SendBatch: one buffer the batch
// is sealed into back to back, and the packets' slices of it.
type batchBufs struct {
	buf   []byte
	nonce [12]byte
	pkts  [][]byte
}

func (t *Transport) getBatch() *batchBufs {
	if v := t.batches.Get(); v != nil {
		return v.(*batchBufs)
	}
	return &batchBufs{
		buf:  make([]byte, 0, maxBatch*t.cfg.MaxPacketSize),
		pkts: make([][]byte, 0, maxBatch),
	}
}

func (t *Transport) putBatch(bb *batchBufs) {
	clear(bb.pkts)
	bb.pkts = bb.pkts[:0]
	t.batches.Put(bb)
}

func (s *session) sendKind(kind Kind, b []byte) error {
	if s.closedFlag.Load() {
		return security.ErrSessionClosed
	}
	kp := s.cur.Load()
	ps := s.path.Load()
	if kp == nil || kp.rekeyDue.Load() || !ps.validated.Load() {
		return s.sendSlow(kind, b)
	}
	if kp.sendCounter.Load() >= s.t.cfg.RekeyAfterMessages {
		return s.sendSlow(kind, b)
	}
	if err := s.sealAndWrite(kp, ps, kind, b, false); err != errUnusableKeys {
		return err
	}
	return s.sendSlow(kind, b)
}

// errUnusableKeys tells sendKind that the keys were wiped or exhausted
// meanwhile; it never reaches callers.
var errUnusableKeys = fmt.Errorf("noise: keys unusable")

// sealAndWrite seals one packet under kp and writes it along ps. With
// budget set and ps not validated, it sends only within the 3× budget.
func (s *session) sealAndWrite(kp *keypair, ps *pathState, kind Kind, b []byte, budget bool) error {
	t := s.t
	n := uint64(DataOverhead + len(b))
	if budget || !ps.validated.Load() {
		if !ps.validated.Load() {
			if ps.sentBytes.Add(n) > amplificationFactor*ps.recvBytes.Load() {
				ps.sentBytes.Add(^(n - 1))
				t.stats.droppedAmplification.Add(1)
				return errAmplification
			}
		}
	}
	ctr := kp.sendCounter.Add(1) - 1
	if ctr >= t.cfg.RejectAfterMessages {
		return errUnusableKeys
	}
	buf := t.getBuf()
	out, ok := kp.seal(buf.b[:0], &buf.nonce, kind, ctr, b, t.aesOK())
	if !ok {
		t.putBuf(buf)
		return errUnusableKeys
	}
	err := ps.p.WritePacket(out)
	if err == nil {
		t.stats.packetsSent.Add(1)
		t.stats.bytesSent.Add(uint64(len(out)))
	}
	buf.b = out
	t.putBuf(buf)
	return err
}

var errAmplification = fmt.Errorf("noise: path not validated, amplification budget spent")

// sendSlow handles every case the fast path does not: keys due for a
// rekey, keys expired or missing (queue the payload and rekey), a path not
// validated yet (send within the 3× budget, queue the rest).
func (s *session) sendSlow(kind Kind, b []byte) error {
	t := s.t
	now := t.now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return security.ErrSessionClosed
	}
	kp := s.cur.Load()
	usable := kp != nil && !kp.isWiped() && kp.sendCounter.Load() < t.cfg.RejectAfterMessages
	var h *handshake
	if kp == nil || !usable || kp.rekeyDue.Load() || kp.sendCounter.Load() >= t.cfg.RekeyAfterMessages {
		h = s.startRekeyLocked(now)
	}
	ps := s.path.Load()
	if !usable || (!ps.validated.Load() && ps.budget() < int64(DataOverhead+len(b))) {
		if kind == KindData {
			if len(s.pending) < t.cfg.PendingQueueLimit {
				s.pending = append(s.pending, append([]byte(nil), b...))
			} else {
				t.stats.droppedQueueFull.Add(1)
			}
		}
		s.mu.Unlock()
		startHandshake(h)
		return nil
	}
	s.mu.Unlock()
	startHandshake(h)
	err := s.sealAndWrite(kp, ps, kind, b, false)
	switch err {
	case errAmplification, errUnusableKeys:
		s.mu.Lock()
		if kind == KindData && !s.closed && len(s.pending) < t.cfg.PendingQueueLimit {
			s.pending = append(s.pending, append([]byte(nil), b...))
		}
		s.mu.Unlock()
		return nil
	}
	return err
}
