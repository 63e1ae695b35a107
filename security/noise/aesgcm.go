package noise

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"reflect"
	"runtime"
	"unsafe"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/sys/cpu"
)

// AES-256-GCM for transport packets (docs/protocol/noise.md, "Data
// cipher"). The handshake and its keys are Noise_*_25519_ChaChaPoly_BLAKE2s;
// once both ends have said (in authenticated packets) that they open
// AES-256-GCM, and a keypair has sealed aesAfterPackets packets, its
// packets are sealed with AES-256-GCM under a key derived from the Noise
// transport key. With AES-NI and carry-less multiplication Go's AES-GCM
// runs at about 2.5× ChaCha20-Poly1305 (4.4–5 GB/s against 1.9–2.1 GB/s on
// the reference CPU), and on loopback the AEAD was half the CPU of a bulk
// transfer. Without the instructions AES-GCM is slower and not offered.
const (
	// aesAfterPackets keeps short exchanges on ChaCha20-Poly1305: the AES
	// state (≈ 1.5 KiB per keypair) is made only for sessions that move
	// data in bulk, so that idle sessions stay small.
	aesAfterPackets = 128
	// aesRekeyAfter starts a rekey once a keypair has sealed this many
	// packets with AES-GCM, well before aesMaxPackets.
	aesRekeyAfter = 1 << 22
	// aesMaxPackets is the most packets sealed with AES-GCM under one key:
	// RFC 9001's confidentiality limit for AES-GCM (2²³ packets, §6.6).
	// Past it a keypair seals with ChaCha20-Poly1305 until the rekey.
	aesMaxPackets = 1 << 23
)

// gcmLabel derives a direction's AES-256-GCM key from its Noise transport
// key k: BLAKE2s-256 keyed with k over this label, so that the two ciphers
// never share a key.
const gcmLabel = "go-ipv8/noise/1 AES-256-GCM"

// errAESRefused: an AES-GCM packet arrived at an end that never said it
// opens AES-GCM.
var errAESRefused = errors.New("noise: AES-GCM packet, not offered")

// aesOK reports whether this end seals and opens AES-GCM packets.
func (t *Transport) aesOK() bool { return aesGCMUsable && !t.cfg.DisableAESGCM }

// aesGCMUsable: this CPU runs AES-GCM in hardware, and this package can
// wipe the AES-GCM state Go's crypto/cipher makes.
var aesGCMUsable = hardwareAESGCM() && gcmWipeable

func hardwareAESGCM() bool {
	switch runtime.GOARCH {
	case "amd64":
		return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ
	case "arm64":
		return cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
	}
	return false
}

// newGCM makes the AES-256-GCM AEAD of transport key k and wipes every
// copy of key material it made on the way.
func newGCM(k *[keyLen]byte) cipher.AEAD {
	h, _ := blake2s.New256(k[:])
	h.Write([]byte(gcmLabel))
	var sub [keyLen]byte
	h.Sum(sub[:0])
	wipeFlat(h)
	block, err := aes.NewCipher(sub[:])
	clear(sub[:])
	if err != nil {
		panic("noise: aes: " + err.Error())
	}
	g, err := cipher.NewGCM(block)
	// The GCM holds its own copy of the key schedule; the block's is
	// garbage from here.
	wipeFlat(block)
	if err != nil {
		panic("noise: gcm: " + err.Error())
	}
	return g
}

// gcmWipeable checks once that the AEAD crypto/cipher.NewGCM returns for
// AES, the AES block, and the BLAKE2s state are pointers to structs of
// plain values (key schedule, hash table, counters), which wipeFlat then
// zeroes in place. Go offers no other way to erase them; if the layout
// ever changes, AES-GCM is not offered.
var gcmWipeable = func() bool {
	block, err := aes.NewCipher(make([]byte, keyLen))
	if err != nil {
		return false
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return false
	}
	h, err := blake2s.New256(make([]byte, keyLen))
	if err != nil {
		return false
	}
	return flatPointer(reflect.TypeOf(g)) && flatPointer(reflect.TypeOf(block)) && flatPointer(reflect.TypeOf(h))
}()

// flatPointer reports whether t is a pointer to a struct holding no
// pointers, so that zeroing its bytes erases everything it holds.
func flatPointer(t reflect.Type) bool {
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct && plainValue(t.Elem())
}

func plainValue(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	case reflect.Array:
		return plainValue(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if !plainValue(t.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return false
}

// wipeFlat zeroes the struct v points to when flatPointer allows it.
func wipeFlat(v any) bool {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || !flatPointer(rv.Type()) || rv.IsNil() {
		return false
	}
	clear(unsafe.Slice((*byte)(unsafe.Pointer(rv.Pointer())), rv.Type().Elem().Size()))
	return true
}
