package noise

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/flynn/noise"
)

// flynnIK is the reference: flynn/noise running IK with this package's
// cipher suite, static key s, the responder's static key rs (initiator)
// and a given ephemeral key.
func flynnIK(t *testing.T, initiator bool, s *dhKeypair, rs []byte, eph *dhKeypair) *noise.HandshakeState {
	t.Helper()
	su := &suite{fixedEph: eph}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   su,
		Pattern:       noise.HandshakeIK,
		Initiator:     initiator,
		Prologue:      []byte(prologue),
		StaticKeypair: s.noiseKey(),
		PeerStatic:    rs,
	})
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

func plainSS(s *dhKeypair) ssFunc {
	return func(rs []byte) ([32]byte, error) {
		var out [32]byte
		err := x25519(&out, s.private[:], rs)
		return out, err
	}
}

func copyKP(k *dhKeypair) *dhKeypair { c := *k; return &c }

// The hand-written IK produces flynn/noise's messages byte for byte, reads
// flynn's, and ends with the same transport keys, in both roles.
func TestIKMatchesFlynn(t *testing.T) {
	for i := 0; i < 20; i++ {
		si, _ := newEphemeral(rand.Reader) // initiator's static key
		sr, _ := newEphemeral(rand.Reader) // responder's static key
		ei, _ := newEphemeral(rand.Reader)
		er, _ := newEphemeral(rand.Reader)
		payload1 := []byte("hello with some early data")[:i]
		payload2 := []byte("answer")[:i%7]

		// Ours as initiator, flynn as responder.
		st, msg1, c, err := ikWrite1(copyKP(ei), si, &sr.public, plainSS(si), payload1)
		if err != nil {
			t.Fatal(err)
		}
		ref := flynnIK(t, false, sr, nil, copyKP(er))
		got1, _, _, err := ref.ReadMessage(nil, msg1)
		if err != nil || !bytes.Equal(got1, payload1) {
			t.Fatalf("flynn reads our message 1: %q, %v", got1, err)
		}
		if !bytes.Equal(ref.PeerStatic(), si.public[:]) {
			t.Fatal("flynn read another static key from our message 1")
		}
		// The payload cipher is the one flynn's responder opened it with.
		sealed := c.Encrypt(nil, 9, nil, []byte("x"))
		c.wipe()
		msg2, rcs1, rcs2, err := ref.WriteMessage(nil, payload2)
		if err != nil {
			t.Fatal(err)
		}
		got2, c1, c2, err := ikRead2(&st, ei, si, msg2)
		if err != nil || !bytes.Equal(got2, payload2) {
			t.Fatalf("we read flynn's message 2: %q, %v", got2, err)
		}
		sameCipher(t, "initiator c1", c1, rcs1)
		sameCipher(t, "initiator c2", c2, rcs2)

		// flynn as initiator, ours as responder, same keys: the messages
		// must be the same bytes.
		ini := flynnIK(t, true, si, sr.public[:], copyKP(ei))
		fmsg1, _, _, err := ini.WriteMessage(nil, payload1)
		if err != nil || !bytes.Equal(fmsg1, msg1) {
			t.Fatalf("message 1 differs from flynn's (%v)", err)
		}
		rst, re, rs, got1b, mc, err := ikRead1(sr, plainSS(sr), fmsg1)
		if err != nil || !bytes.Equal(got1b, payload1) || re != ei.public || rs != si.public {
			t.Fatalf("we read flynn's message 1: %q, %v", got1b, err)
		}
		if pt, err := mc.Decrypt(nil, 9, nil, sealed); err != nil || string(pt) != "x" {
			t.Fatal("the responder's payload cipher is not the initiator's")
		}
		mc.wipe()
		omsg2, oc1, oc2, err := ikWrite2(&rst, copyKP(er), &re, &rs, payload2)
		if err != nil || !bytes.Equal(omsg2, msg2) {
			t.Fatalf("message 2 differs from flynn's (%v)", err)
		}
		if rst != (symState{}) {
			t.Fatal("ikWrite2 left the handshake state behind")
		}
		got2b, ics1, ics2, err := ini.ReadMessage(nil, omsg2)
		if err != nil || !bytes.Equal(got2b, payload2) {
			t.Fatalf("flynn reads our message 2: %q, %v", got2b, err)
		}
		sameCipher(t, "responder c1", oc1, ics1)
		sameCipher(t, "responder c2", oc2, ics2)
	}
}

// A message 2 that does not authenticate leaves the initiator's state
// intact, so the real one still completes; tampered or short messages 1
// are refused.
func TestIKForgedMessagesRefused(t *testing.T) {
	si, _ := newEphemeral(rand.Reader)
	sr, _ := newEphemeral(rand.Reader)
	ei, _ := newEphemeral(rand.Reader)
	er, _ := newEphemeral(rand.Reader)
	st, msg1, c, err := ikWrite1(ei, si, &sr.public, plainSS(si), []byte("p"))
	if err != nil {
		t.Fatal(err)
	}
	c.wipe()
	for i := range msg1 {
		bad := append([]byte(nil), msg1...)
		bad[i] ^= 0x80
		if _, _, _, _, _, err := ikRead1(sr, plainSS(sr), bad); err == nil {
			t.Fatalf("message 1 with byte %d flipped read", i)
		}
	}
	if _, _, _, _, _, err := ikRead1(sr, plainSS(sr), msg1[:ikMsg1Len-1]); err == nil {
		t.Fatal("a short message 1 read")
	}
	// Another responder key cannot read it.
	other, _ := newEphemeral(rand.Reader)
	if _, _, _, _, _, err := ikRead1(other, plainSS(other), msg1); err == nil {
		t.Fatal("message 1 read under another static key")
	}
	rst, re, rs, _, mc, err := ikRead1(sr, plainSS(sr), msg1)
	if err != nil {
		t.Fatal(err)
	}
	mc.wipe()
	msg2, _, _, err := ikWrite2(&rst, er, &re, &rs, nil)
	if err != nil {
		t.Fatal(err)
	}
	forged := append([]byte(nil), msg2...)
	forged[len(forged)-1] ^= 1
	if _, _, _, err := ikRead2(&st, ei, si, forged); err == nil {
		t.Fatal("a forged message 2 authenticated")
	}
	if _, _, _, err := ikRead2(&st, ei, si, msg2[:keyLen+tagLen-1]); err == nil {
		t.Fatal("a short message 2 authenticated")
	}
	if _, _, _, err := ikRead2(&st, ei, si, msg2); err != nil {
		t.Fatalf("the real message 2 after a forged one: %v", err)
	}
	if st != (symState{}) {
		t.Fatal("the initiator's state was not wiped after message 2")
	}
}
