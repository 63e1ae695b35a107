package noise

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/flynn/noise"
)

// The Edwards-curve key generation gives X25519(private, 9), as the ladder
// computes it.
func TestEphemeralMatchesX25519(t *testing.T) {
	for i := 0; i < 2000; i++ {
		k, err := newEphemeral(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		var want [32]byte
		x25519Base(&want, k.private[:])
		if k.public != want {
			t.Fatalf("private %x: edwards %x, ladder %x", k.private, k.public, want)
		}
	}
	// Edge scalars: all zeros and all ones (clamping decides).
	for _, b := range []byte{0x00, 0xff} {
		var priv, got, want [32]byte
		for i := range priv {
			priv[i] = b
		}
		x25519BaseEdwards(&got, &priv)
		x25519Base(&want, priv[:])
		if got != want {
			t.Fatalf("scalar of %#x bytes: %x vs %x", b, got, want)
		}
	}
}

// flynnNNpsk0 is the reference: flynn/noise running NNpsk0 with this
// package's cipher suite and a given ephemeral key.
func flynnNNpsk0(t *testing.T, initiator bool, psk []byte, eph *dhKeypair) *noise.HandshakeState {
	t.Helper()
	su := &suite{fixedEph: eph}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:           su,
		Pattern:               noise.HandshakeNN,
		Initiator:             initiator,
		Prologue:              []byte(prologue),
		PresharedKey:          psk,
		PresharedKeyPlacement: 0,
	})
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

func sameCipher(t *testing.T, what string, a *aeadCipher, b *noise.CipherState) {
	t.Helper()
	pt := []byte("transport payload")
	ct := a.Encrypt(nil, 5, []byte("ad"), pt)
	want := b.Cipher().Encrypt(nil, 5, []byte("ad"), pt)
	if !bytes.Equal(ct, want) {
		t.Fatalf("%s: transport keys differ from flynn/noise's", what)
	}
}

// The hand-written NNpsk0 produces flynn/noise's messages byte for byte and
// the same transport keys, in both roles.
func TestNNpsk0MatchesFlynn(t *testing.T) {
	for i := 0; i < 20; i++ {
		var psk [32]byte
		rand.Read(psk[:])
		ei, _ := newEphemeral(rand.Reader)
		er, _ := newEphemeral(rand.Reader)
		payload1 := []byte("hello with some early data")[:i]
		payload2 := []byte("answer")

		// Ours as initiator, flynn as responder.
		st, msg1, c := resumeWrite1(&psk, ei, payload1)
		c.wipe()
		ref := flynnNNpsk0(t, false, psk[:], &dhKeypair{private: er.private, public: er.public})
		got1, _, _, err := ref.ReadMessage(nil, msg1)
		if err != nil || !bytes.Equal(got1, payload1) {
			t.Fatalf("flynn reads our message 1: %q, %v", got1, err)
		}
		msg2, rcs1, rcs2, err := ref.WriteMessage(nil, payload2)
		if err != nil {
			t.Fatal(err)
		}
		got2, c1, c2, err := resumeRead2(&st, ei, msg2)
		if err != nil || !bytes.Equal(got2, payload2) {
			t.Fatalf("we read flynn's message 2: %q, %v", got2, err)
		}
		sameCipher(t, "initiator c1", c1, rcs1)
		sameCipher(t, "initiator c2", c2, rcs2)

		// flynn as initiator, ours as responder, same ephemerals: the
		// messages must be the same bytes.
		ini := flynnNNpsk0(t, true, psk[:], &dhKeypair{private: ei.private, public: ei.public})
		fmsg1, _, _, err := ini.WriteMessage(nil, payload1)
		if err != nil || !bytes.Equal(fmsg1, msg1) {
			t.Fatalf("message 1 differs from flynn's (%v)", err)
		}
		rst, re, got1b, mc, err := resumeRead1(&psk, fmsg1)
		if err != nil || !bytes.Equal(got1b, payload1) || re != ei.public {
			t.Fatalf("we read flynn's message 1: %q, %v", got1b, err)
		}
		mc.wipe()
		omsg2, oc1, oc2, err := resumeWrite2(&rst, &dhKeypair{private: er.private, public: er.public}, &re, payload2)
		if err != nil || !bytes.Equal(omsg2, msg2) {
			t.Fatalf("message 2 differs from flynn's (%v)", err)
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
// intact, so the real one still completes.
func TestNNpsk0ForgedMessage2LeavesStateIntact(t *testing.T) {
	var psk [32]byte
	rand.Read(psk[:])
	ei, _ := newEphemeral(rand.Reader)
	er, _ := newEphemeral(rand.Reader)
	st, msg1, _ := resumeWrite1(&psk, ei, nil)
	rst, re, _, _, err := resumeRead1(&psk, msg1)
	if err != nil {
		t.Fatal(err)
	}
	msg2, _, _, err := resumeWrite2(&rst, er, &re, nil)
	if err != nil {
		t.Fatal(err)
	}
	forged := append([]byte(nil), msg2...)
	forged[len(forged)-1] ^= 1
	if _, _, _, err := resumeRead2(&st, ei, forged); err == nil {
		t.Fatal("a forged message 2 authenticated")
	}
	if _, _, _, err := resumeRead2(&st, ei, msg2); err != nil {
		t.Fatalf("the real message 2 after a forged one: %v", err)
	}
	// A wrong psk fails message 1.
	var other [32]byte
	rand.Read(other[:])
	if _, _, _, _, err := resumeRead1(&other, msg1); err == nil {
		t.Fatal("message 1 opened with another ticket's secret")
	}
}
