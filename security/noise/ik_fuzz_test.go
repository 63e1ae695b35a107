package noise

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// ikFuzzKeys are fixed keys, so that the checked-in seeds (real messages
// made with them) authenticate.
func ikFuzzKeys() (si, sr, ei, er *dhKeypair) {
	mk := func(b byte) *dhKeypair {
		k := new(dhKeypair)
		for i := range k.private {
			k.private[i] = b + byte(i)
		}
		x25519Base(&k.public, k.private[:])
		return k
	}
	return mk(1), mk(2), mk(3), mk(4)
}

// FuzzIKMessages reads arbitrary bytes as IK message 1 (responder) and as
// message 2 (initiator, after a real message 1): nothing panics, message 1
// authenticates only under the one static key whose private half made the
// seeds, message 2 only as the real one, and a failed message 2 leaves the
// initiator's state as it was. The checked-in seeds are the real messages
// (ikFuzzKeys), which TestIKFuzzSeedsAreRealMessages checks.
func FuzzIKMessages(f *testing.F) {
	si, sr, ei, er := ikFuzzKeys()
	st, msg1, c, err := ikWrite1(copyKP(ei), si, &sr.public, plainSS(si), []byte("hello"))
	if err != nil {
		f.Fatal(err)
	}
	c.wipe()
	rst, re, rs, _, mc, err := ikRead1(sr, plainSS(sr), msg1)
	if err != nil {
		f.Fatal(err)
	}
	mc.wipe()
	msg2, _, _, err := ikWrite2(&rst, copyKP(er), &re, &rs, []byte("answer"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(msg1)
	f.Add(msg2)
	f.Add(msg1[:ikMsg1Len])
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, _, rs1, _, c1, err := ikRead1(sr, plainSS(sr), b); err == nil {
			c1.wipe()
			// Authenticating message 1 takes the private half of the
			// static key it names: the fuzzer has only si's (in the seed).
			if rs1 != si.public {
				t.Fatalf("message 1 authenticated with static key %x", rs1)
			}
		}
		w := st
		pt, c1, c2, err := ikRead2(&w, ei, si, b)
		if err != nil {
			if w != st {
				t.Fatal("a failed message 2 changed the initiator's state")
			}
			return
		}
		c1.wipe()
		c2.wipe()
		if !bytes.Equal(b, msg2) || string(pt) != "answer" {
			t.Fatalf("a message 2 other than the real one authenticated: %x", b)
		}
	})
}

// The checked-in seeds of FuzzIKMessages are real messages under
// ikFuzzKeys: the first reads as message 1, the second as message 2.
func TestIKFuzzSeedsAreRealMessages(t *testing.T) {
	si, sr, ei, er := ikFuzzKeys()
	st, msg1, c, err := ikWrite1(copyKP(ei), si, &sr.public, plainSS(si), []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	c.wipe()
	rst, re, rs, _, mc, err := ikRead1(sr, plainSS(sr), msg1)
	if err != nil {
		t.Fatal(err)
	}
	mc.wipe()
	msg2, _, _, err := ikWrite2(&rst, copyKP(er), &re, &rs, []byte("answer"))
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("NOISE_WRITE_SEEDS") != "" {
		d := filepath.Join("testdata", "fuzz", "FuzzIKMessages")
		os.MkdirAll(d, 0o755)
		for i, m := range [][]byte{msg1, msg2} {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(m)) + ")\n"
			os.WriteFile(filepath.Join(d, "seed"+strconv.Itoa(i)), []byte(body), 0o644)
		}
	}
	for i, want := range [][]byte{msg1, msg2} {
		raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzIKMessages", "seed"+strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.SplitN(raw, []byte("\n"), 3)
		if len(lines) < 2 || string(lines[0]) != "go test fuzz v1" {
			t.Fatalf("seed%d: not a corpus file", i)
		}
		lit := bytes.TrimSuffix(bytes.TrimPrefix(lines[1], []byte("[]byte(")), []byte(")"))
		b, err := strconv.Unquote(string(lit))
		if err != nil || b != string(want) {
			t.Fatalf("seed%d is not the real message %d (%v)", i, i+1, err)
		}
	}
	w := st
	if _, _, _, err := ikRead2(&w, ei, si, msg2); err != nil {
		t.Fatal(err)
	}
}
