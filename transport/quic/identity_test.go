package quic

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ipv8/go-ipv8/peer"
)

// certOpts builds good and deliberately broken libp2p certificates.
type certOpts struct {
	identity     *peer.PrivateKey // signs the certificate key (default: a fresh key)
	claimed      []byte           // the publicKey field (default: identity's libp2p encoding)
	certKey      crypto.Signer    // the certificate's key (default: fresh ECDSA P-256)
	tamperSig    bool             // flip a bit of the identity signature
	signOtherKey bool             // sign another key's SubjectPublicKeyInfo
	notBefore    time.Time
	notAfter     time.Time
	noExtension  bool
	critical     bool           // mark the libp2p extension critical
	extra        pkix.Extension // an extra extension, if Id is set
	extValue     []byte         // replace the extension value
}

func mustCert(t testing.TB, o certOpts) *tls.Certificate {
	t.Helper()
	if o.identity == nil {
		k, err := peer.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		o.identity = k
	}
	if o.claimed == nil {
		o.claimed = peer.MarshalLibp2pPublicKey(o.identity.Public().Ed25519())
	}
	if o.certKey == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		o.certKey = k
	}
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(time.Hour)
	}
	signed := o.certKey.Public()
	if o.signOtherKey {
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		signed = other.Public()
	}
	spki, err := x509.MarshalPKIXPublicKey(signed)
	if err != nil {
		t.Fatal(err)
	}
	sig := o.identity.Sign(append([]byte(signaturePrefix), spki...))
	if o.tamperSig {
		sig[10] ^= 0x01
	}
	value, err := marshalSignedKey(o.claimed, sig)
	if err != nil {
		t.Fatal(err)
	}
	if o.extValue != nil {
		value = o.extValue
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: o.notBefore, NotAfter: o.notAfter}
	if !o.noExtension {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: extensionOID, Critical: o.critical, Value: value})
	}
	if o.extra.Id != nil {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, o.extra)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, o.certKey.Public(), o.certKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: o.certKey}
}

func TestGeneratedCertificateProvesIdentity(t *testing.T) {
	key, _ := peer.GenerateKey(nil)
	now := time.Now()
	c, err := newCertificate(key, now)
	if err != nil {
		t.Fatal(err)
	}
	id, err := verifyCertificate(c.Certificate, now)
	if err != nil {
		t.Fatal(err)
	}
	if id != key.ID() {
		t.Errorf("certificate proves %s, want %s", id, key.ID())
	}
	cert, _ := x509.ParseCertificate(c.Certificate[0])
	if _, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || cert.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Errorf("certificate key %T, algorithm %v; want ECDSA P-256 with SHA-256", cert.PublicKey, cert.SignatureAlgorithm)
	}
	// Valid for the clock skew of real peers, refused outside its window.
	if _, err := verifyCertificate(c.Certificate, now.Add(-certBackdate+time.Minute)); err != nil {
		t.Errorf("refused by a peer whose clock is a day behind: %v", err)
	}
	if _, err := verifyCertificate(c.Certificate, now.Add(certLifetime+time.Minute)); !errors.Is(err, ErrInvalidCertificate) {
		t.Errorf("accepted after expiry: %v", err)
	}
}

func TestCertificateVerificationRefusesBadCertificates(t *testing.T) {
	key, _ := peer.GenerateKey(nil)
	other, _ := peer.GenerateKey(nil)
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now()
	good := mustCert(t, certOpts{identity: key}).Certificate[0]

	flipLast := append([]byte(nil), good...)
	flipLast[len(flipLast)-1] ^= 0x01 // inside the certificate's self-signature

	trailing, _ := marshalSignedKey(peer.MarshalLibp2pPublicKey(key.Public().Ed25519()), make([]byte, 64))
	trailing = append(trailing, 0x00)

	for _, tc := range []struct {
		name  string
		certs [][]byte
		why   string
	}{
		{"tampered identity signature", [][]byte{mustCert(t, certOpts{identity: key, tamperSig: true}).Certificate[0]}, "does not verify"},
		{"signature by another identity", [][]byte{mustCert(t, certOpts{identity: other, claimed: peer.MarshalLibp2pPublicKey(key.Public().Ed25519())}).Certificate[0]}, "does not verify"},
		{"signature over another certificate key", [][]byte{mustCert(t, certOpts{identity: key, signOtherKey: true}).Certificate[0]}, "does not verify"},
		{"missing extension", [][]byte{mustCert(t, certOpts{identity: key, noExtension: true}).Certificate[0]}, "0 libp2p key extensions"},
		{"two certificates", [][]byte{good, mustCert(t, certOpts{identity: key}).Certificate[0]}, "2 certificates"},
		{"no certificate", nil, "0 certificates"},
		{"expired", [][]byte{mustCert(t, certOpts{identity: key, notBefore: now.Add(-2 * time.Hour), notAfter: now.Add(-time.Hour)}).Certificate[0]}, "expired"},
		{"not yet valid", [][]byte{mustCert(t, certOpts{identity: key, notBefore: now.Add(time.Hour), notAfter: now.Add(2 * time.Hour)}).Certificate[0]}, "not valid before"},
		{"bad self-signature", [][]byte{flipLast}, ""},
		{"unknown critical extension", [][]byte{mustCert(t, certOpts{identity: key, extra: pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{5, 0}}}).Certificate[0]}, "critical extension"},
		{"non-Ed25519 identity key", [][]byte{mustCert(t, certOpts{identity: key, claimed: []byte{0x08, 0x02, 0x12, 0x21, 0x02}}).Certificate[0]}, "Ed25519"},
		{"extension not a SignedKey", [][]byte{mustCert(t, certOpts{identity: key, extValue: []byte{0x04, 0x01, 0x00}}).Certificate[0]}, "key extension"},
		{"extension with trailing bytes", [][]byte{mustCert(t, certOpts{identity: key, extValue: trailing}).Certificate[0]}, "not a DER SEQUENCE"},
		{"garbage", [][]byte{[]byte("not a certificate")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := verifyCertificate(tc.certs, now)
			if !errors.Is(err, ErrInvalidCertificate) {
				t.Fatalf("accepted (as %s): %v", id, err)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Errorf("refused for %q, want a reason mentioning %q", err, tc.why)
			}
		})
	}

	// What the spec allows is accepted: a critical libp2p extension, an
	// unknown non-critical extension, a certificate key other than ECDSA.
	for name, o := range map[string]certOpts{
		"critical libp2p extension":      {identity: key, critical: true},
		"unknown non-critical extension": {identity: key, extra: pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: []byte{5, 0}}},
		"Ed25519 certificate key":        {identity: key, certKey: edPriv},
	} {
		if id, err := verifyCertificate(mustCert(t, o).Certificate, now); err != nil || id != key.ID() {
			t.Errorf("%s: refused: %v", name, err)
		}
	}
}

// The libp2p TLS spec's test vectors (libp2p/specs, tls/tls.md, "Test
// vectors"): certificates made by other implementations.
const (
	specVectorEd25519   = "308201ae30820156a0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f34303936303130313133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea37c307a3078060a2b0601040183a25a0101046a3068042408011220a77f1d92fedb59dddaea5a1c4abd1ac2fbde7d7b879ed364501809923d7c11b90440d90d2769db992d5e6195dbb08e706b6651e024fda6cfb8846694a435519941cac215a8207792e42849cccc6cd8136c6e4bde92a58c5e08cfd4206eb5fe0bf909300a06082a8648ce3d0403020346003043021f50f6b6c52711a881778718238f650c9fb48943ae6ee6d28427dc6071ae55e702203625f116a7a454db9c56986c82a25682f7248ea1cb764d322ea983ed36a31b77"
	specVectorEd25519ID = "12D3KooWM6CgA9iBFZmcYAHA6A2qvbAxqfkmrYiRQuz3XEsk4Ksv"
	// An ECDSA identity whose signature does not match its key.
	specVectorInvalid = "308201f73082019da0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f34303936303130313133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea381c23081bf3081bc060a2b0601040183a25a01010481ad3081aa045f0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004bf30511f909414ebdd3242178fd290f093a551cf75c973155de0bb5a96fedf6cb5d52da7563e794b512f66e60c7f55ba8a3acf3dd72a801980d205e8a1ad29f204473045022100bb6e03577b7cc7a3cd1558df0da2b117dfdcc0399bc2504ebe7de6f65cade72802206de96e2a5be9b6202adba24ee0362e490641ac45c240db71fe955f2c5cf8df6e300a06082a8648ce3d0403020348003045022100e847f267f43717358f850355bdcabbefb2cfbf8a3c043b203a14788a092fe8db022027c1d04a2d41fd6b57a7e8b3989e470325de4406e52e084e34a3fd56eef0d0df"
)

func TestCertificateFromSpecVectorsVerify(t *testing.T) {
	der, _ := hex.DecodeString(specVectorEd25519)
	id, err := verifyCertificate([][]byte{der}, time.Now())
	if err != nil {
		t.Fatalf("spec's Ed25519 vector refused: %v", err)
	}
	if id.String() != specVectorEd25519ID {
		t.Errorf("spec's Ed25519 vector proves %s, want %s", id, specVectorEd25519ID)
	}
	bad, _ := hex.DecodeString(specVectorInvalid)
	if _, err := verifyCertificate([][]byte{bad}, time.Now()); !errors.Is(err, ErrInvalidCertificate) {
		t.Errorf("spec's invalid vector accepted: %v", err)
	}
}

func TestSignedKeyEncodingIsTwoOctetStrings(t *testing.T) {
	pub := peer.MarshalLibp2pPublicKey(make([]byte, 32))
	sig := bytes.Repeat([]byte{0xAB}, 64)
	b, err := marshalSignedKey(pub, sig)
	if err != nil {
		t.Fatal(err)
	}
	// SEQUENCE(0x30) { OCTET STRING(0x04) 36 bytes, OCTET STRING(0x04) 64 bytes }
	want := append(append(append([]byte{0x30, 2 + 36 + 2 + 64, 0x04, 36}, pub...), 0x04, 64), sig...)
	if !bytes.Equal(b, want) {
		t.Errorf("SignedKey DER\n got %x\nwant %x", b, want)
	}
	gotPub, gotSig, err := parseSignedKey(b)
	if err != nil || !bytes.Equal(gotPub, pub) || !bytes.Equal(gotSig, sig) {
		t.Errorf("parse: %x %x %v", gotPub, gotSig, err)
	}
	for name, bad := range map[string][]byte{
		"oversized":                 make([]byte, maxSignedKeyLen+1),
		"extra element in sequence": append([]byte{0x30, b[1] + 2}, append(append([]byte{}, b[2:]...), 0x04, 0x00)...),
		"bytes after the sequence":  append(append([]byte{}, b...), 0x00),
		"BIT STRINGs":               {0x30, 0x06, 0x03, 0x01, 0x00, 0x03, 0x01, 0x00},
		"one OCTET STRING":          {0x30, 0x02, 0x04, 0x00},
		"non-minimal length":        append([]byte{0x30, 0x81, b[1]}, b[2:]...),
	} {
		if _, _, err := parseSignedKey(bad); !errors.Is(err, ErrInvalidCertificate) {
			t.Errorf("%s: accepted (%v)", name, err)
		}
	}
}

func TestCertStoreRenewsCertificate(t *testing.T) {
	key, _ := peer.GenerateKey(nil)
	s, err := newCertStore(key)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c1, _ := s.get(now)
	c2, _ := s.get(now.Add(time.Hour))
	c3, _ := s.get(now.Add(certRenew + time.Minute))
	if c1 != c2 {
		t.Error("certificate replaced before it was due")
	}
	if c3 == c1 {
		t.Error("certificate not replaced after certRenew")
	}
	if id, err := verifyCertificate(c3.Certificate, now.Add(certRenew+time.Minute)); err != nil || id != key.ID() {
		t.Errorf("renewed certificate: %s, %v", id, err)
	}
}
