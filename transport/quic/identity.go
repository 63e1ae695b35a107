package quic

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/ipv8/go-ipv8/peer"
)

// libp2p's TLS identity scheme (libp2p specs, tls/tls.md): a self-signed
// certificate for an ephemeral key carries this extension, whose value is the
// DER of SignedKey ::= SEQUENCE { publicKey OCTET STRING, signature OCTET STRING }.
var extensionOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 53594, 1, 1}

const (
	// signaturePrefix precedes the certificate's DER SubjectPublicKeyInfo in
	// the message the identity key signs.
	signaturePrefix = "libp2p-tls-handshake:"
	// alpn is the only application protocol offered and accepted.
	alpn = "libp2p"

	// A certificate is valid from a day before it was made (peers' clocks
	// are often wrong) for a year, and is replaced after a day of use, so a
	// long-running host never presents one close to expiry.
	certBackdate = 24 * time.Hour
	certLifetime = 365 * 24 * time.Hour
	certRenew    = 24 * time.Hour

	// maxSignedKeyLen bounds the extension value: a libp2p RSA-4096 key and
	// signature are well below it; an Ed25519 one is 108 bytes.
	maxSignedKeyLen = 4096
)

// ErrInvalidCertificate is returned (wrapped, with the reason) for a peer
// certificate that does not prove a libp2p identity.
var ErrInvalidCertificate = errors.New("quic: invalid peer certificate")

// signedKey is the ASN.1 value of the libp2p public key extension. encoding/asn1
// writes and reads []byte as OCTET STRING.
type signedKey struct {
	PublicKey []byte
	Signature []byte
}

// parseSignedKey decodes the DER value of the libp2p public key extension:
// exactly a SEQUENCE of two OCTET STRINGs, nothing before, inside or after
// it. It checks the structure only; verifyCertificate checks the signature.
func parseSignedKey(b []byte) (publicKey, signature []byte, err error) {
	if len(b) > maxSignedKeyLen {
		return nil, nil, fmt.Errorf("%w: key extension is %d bytes, at most %d", ErrInvalidCertificate, len(b), maxSignedKeyLen)
	}
	in := cryptobyte.String(b)
	var seq, pub, sig cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1(&pub, cbasn1.OCTET_STRING) || !seq.ReadASN1(&sig, cbasn1.OCTET_STRING) || !seq.Empty() {
		return nil, nil, fmt.Errorf("%w: key extension is not a DER SEQUENCE of two OCTET STRINGs", ErrInvalidCertificate)
	}
	return pub, sig, nil
}

// marshalSignedKey returns the DER value of the libp2p public key extension.
func marshalSignedKey(publicKey, signature []byte) ([]byte, error) {
	return asn1.Marshal(signedKey{PublicKey: publicKey, Signature: signature})
}

// newCertificate makes a self-signed certificate for a fresh ECDSA P-256 key
// that carries key's identity, valid from now-certBackdate to now+certLifetime.
func newCertificate(key *peer.PrivateKey, now time.Time) (*tls.Certificate, error) {
	certKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("quic: certificate key: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&certKey.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("quic: certificate key: %w", err)
	}
	msg := append([]byte(signaturePrefix), spki...)
	ext, err := marshalSignedKey(peer.MarshalLibp2pPublicKey(key.Public().Ed25519()), key.Sign(msg))
	if err != nil {
		return nil, fmt.Errorf("quic: key extension: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		return nil, fmt.Errorf("quic: certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    serial,
		NotBefore:       now.Add(-certBackdate),
		NotAfter:        now.Add(certLifetime),
		ExtraExtensions: []pkix.Extension{{Id: extensionOID, Value: ext}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &certKey.PublicKey, certKey)
	if err != nil {
		return nil, fmt.Errorf("quic: creating certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: certKey}, nil
}

// acceptedSignatures are the certificate self-signature algorithms accepted:
// none with a hash shorter than 256 bits (the spec forbids MD5 and SHA-1).
var acceptedSignatures = map[x509.SignatureAlgorithm]bool{
	x509.ECDSAWithSHA256:  true,
	x509.ECDSAWithSHA384:  true,
	x509.ECDSAWithSHA512:  true,
	x509.PureEd25519:      true,
	x509.SHA256WithRSA:    true,
	x509.SHA384WithRSA:    true,
	x509.SHA512WithRSA:    true,
	x509.SHA256WithRSAPSS: true,
	x509.SHA384WithRSAPSS: true,
	x509.SHA512WithRSAPSS: true,
}

// verifyCertificate checks a peer's certificate chain as libp2p's TLS scheme
// requires and returns the identity it proves: exactly one certificate,
// valid at now, correctly self-signed, with no critical extension other than
// the libp2p one, carrying a libp2p Ed25519 key whose signature over the
// certificate's public key verifies.
func verifyCertificate(rawCerts [][]byte, now time.Time) (peer.ID, error) {
	if len(rawCerts) != 1 {
		return "", fmt.Errorf("%w: %d certificates, want exactly 1", ErrInvalidCertificate, len(rawCerts))
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidCertificate, err)
	}
	if now.Before(cert.NotBefore) {
		return "", fmt.Errorf("%w: not valid before %s", ErrInvalidCertificate, cert.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(cert.NotAfter) {
		return "", fmt.Errorf("%w: expired at %s", ErrInvalidCertificate, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if !acceptedSignatures[cert.SignatureAlgorithm] {
		return "", fmt.Errorf("%w: self-signature algorithm %v not accepted", ErrInvalidCertificate, cert.SignatureAlgorithm)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return "", fmt.Errorf("%w: bad self-signature: %v", ErrInvalidCertificate, err)
	}
	for _, oid := range cert.UnhandledCriticalExtensions {
		if !oid.Equal(extensionOID) {
			return "", fmt.Errorf("%w: unknown critical extension %v", ErrInvalidCertificate, oid)
		}
	}
	pub, sig, err := certIdentity(cert)
	if err != nil {
		return "", err
	}
	msg := append([]byte(signaturePrefix), cert.RawSubjectPublicKeyInfo...)
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, sig) {
		return "", fmt.Errorf("%w: identity key's signature over the certificate key does not verify", ErrInvalidCertificate)
	}
	return peer.IDFromEd25519(pub), nil
}

// certIdentity extracts the identity key and its signature from the libp2p
// extension of cert, without checking the signature.
func certIdentity(cert *x509.Certificate) (ed25519.PublicKey, []byte, error) {
	var value []byte
	found := 0
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(extensionOID) {
			value = ext.Value
			found++
		}
	}
	if found != 1 {
		return nil, nil, fmt.Errorf("%w: %d libp2p key extensions, want 1", ErrInvalidCertificate, found)
	}
	pubProto, sig, err := parseSignedKey(value)
	if err != nil {
		return nil, nil, err
	}
	pub, err := peer.UnmarshalLibp2pPublicKey(pubProto)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidCertificate, err)
	}
	return pub, sig, nil
}

// certStore holds the certificate a Transport presents and replaces it when
// it has been in use for certRenew.
type certStore struct {
	key *peer.PrivateKey

	mu      sync.Mutex
	cert    *tls.Certificate
	renewAt time.Time
}

func newCertStore(key *peer.PrivateKey) (*certStore, error) {
	s := &certStore{key: key}
	if _, err := s.get(time.Now()); err != nil {
		return nil, err
	}
	return s, nil
}

// get returns the current certificate, making a new one when it is due.
func (s *certStore) get(now time.Time) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert == nil || !now.Before(s.renewAt) {
		c, err := newCertificate(s.key, now)
		if err != nil {
			if s.cert != nil {
				return s.cert, nil // keep the old one, still valid for months
			}
			return nil, err
		}
		s.cert, s.renewAt = c, now.Add(certRenew)
	}
	return s.cert, nil
}

// set replaces the certificate (tests use it to present bad ones).
func (s *certStore) set(c *tls.Certificate) {
	s.mu.Lock()
	s.cert, s.renewAt = c, time.Now().Add(certLifetime)
	s.mu.Unlock()
}
