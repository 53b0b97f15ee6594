package token

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// The asymmetric algorithms a key set may pin, and HS256 for the shared secret.
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
	AlgHS256 = "HS256"
)

// Key is one public key tokens may be signed with. Its algorithm follows from
// its type: an Ed25519 key verifies EdDSA only, a P-256 key ES256 only.
type Key struct {
	// ID is the kid a token names in its header to select this key: the
	// key's RFC 7638 JWK thumbprint unless the key file names it.
	ID string
	// Alg is AlgEdDSA or AlgES256.
	Alg string
	// Public is an ed25519.PublicKey or a P-256 *ecdsa.PublicKey.
	Public crypto.PublicKey
}

// NewKey returns the Key for pub with its thumbprint as ID. pub must be an
// Ed25519 or a P-256 ECDSA public key.
func NewKey(pub crypto.PublicKey) (Key, error) {
	k := Key{Public: pub}
	switch p := pub.(type) {
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return Key{}, errors.New("token: Ed25519 public key of the wrong size")
		}
		k.Alg = AlgEdDSA
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return Key{}, fmt.Errorf("token: ECDSA key on %s: only P-256 (ES256) is accepted", p.Curve.Params().Name)
		}
		k.Alg = AlgES256
	default:
		return Key{}, fmt.Errorf("token: unsupported public key type %T: use Ed25519 (EdDSA) or P-256 (ES256)", pub)
	}
	jwk, err := publicJWK(pub)
	if err != nil {
		return Key{}, err
	}
	k.ID = jwk.thumbprint()
	return k, nil
}

// PublicKey returns the verification Key matching a signing key, with the ID
// a Minter using priv puts in its tokens' kid.
func PublicKey(priv crypto.Signer) (Key, error) { return NewKey(priv.Public()) }

// jwk is one JSON Web Key (RFC 7517) of the kinds this package accepts.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	D   string `json:"d,omitempty"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

// jwkSet is a JWK set document.
type jwkSet struct {
	Keys []jwk `json:"keys"`
}

var b64 = base64.RawURLEncoding

func publicJWK(pub crypto.PublicKey) (jwk, error) {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		return jwk{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(p)}, nil
	case *ecdsa.PublicKey:
		raw, err := p.Bytes() // 0x04 || X || Y, fixed width
		if err != nil || len(raw) != 65 {
			return jwk{}, fmt.Errorf("token: encode P-256 key: %w", err)
		}
		return jwk{Kty: "EC", Crv: "P-256", X: b64.EncodeToString(raw[1:33]), Y: b64.EncodeToString(raw[33:])}, nil
	}
	return jwk{}, fmt.Errorf("token: unsupported public key type %T", pub)
}

// thumbprint is the RFC 7638 SHA-256 thumbprint of the key's required
// members, in lexicographic order and without whitespace.
func (j jwk) thumbprint() string {
	var canon string
	switch j.Kty {
	case "OKP": // RFC 8037 section 2
		canon = fmt.Sprintf(`{"crv":%q,"kty":"OKP","x":%q}`, j.Crv, j.X)
	default:
		canon = fmt.Sprintf(`{"crv":%q,"kty":"EC","x":%q,"y":%q}`, j.Crv, j.X, j.Y)
	}
	sum := sha256.Sum256([]byte(canon))
	return b64.EncodeToString(sum[:])
}

// key decodes a public JWK into a Key.
func (j jwk) key() (Key, error) {
	if j.D != "" {
		return Key{}, errors.New("a private key in a public key set: publish only public keys")
	}
	if j.Use != "" && j.Use != "sig" {
		return Key{}, fmt.Errorf("use %q: only signing keys are accepted", j.Use)
	}
	var pub crypto.PublicKey
	switch {
	case j.Kty == "OKP" && j.Crv == "Ed25519":
		x, err := b64.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return Key{}, errors.New("Ed25519 key: x is not 32 base64url bytes")
		}
		pub = ed25519.PublicKey(x)
	case j.Kty == "EC" && j.Crv == "P-256":
		x, errX := b64.DecodeString(j.X)
		y, errY := b64.DecodeString(j.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return Key{}, errors.New("P-256 key: x and y must be 32 base64url bytes each")
		}
		p, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return Key{}, fmt.Errorf("P-256 key: %w", err)
		}
		pub = p
	default:
		return Key{}, fmt.Errorf("kty %q crv %q: only OKP/Ed25519 (EdDSA) and EC/P-256 (ES256) are accepted", j.Kty, j.Crv)
	}
	k, err := NewKey(pub)
	if err != nil {
		return Key{}, err
	}
	if j.Alg != "" && j.Alg != k.Alg {
		return Key{}, fmt.Errorf("alg %q does not fit a %s %s key (%s)", j.Alg, j.Kty, j.Crv, k.Alg)
	}
	if j.Kid != "" {
		k.ID = j.Kid
	}
	return k, nil
}

// LoadKeys reads the public keys of a PEM or JWK set file (IOP_JWT_KEYS);
// see ParseKeys.
func LoadKeys(path string) ([]Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token: read key file: %w", err)
	}
	keys, err := ParseKeys(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// ParseKeys parses public keys from a JWK set ({"keys":[...]}, OKP/Ed25519
// and EC/P-256 keys, kid taken from the set or else the thumbprint) or from
// PEM (one or more PUBLIC KEY blocks, each with the kid of a "# kid: name"
// line before it, or else its thumbprint). Kids must be unique; a file with
// no key, a private key, or a key of another type is an error.
func ParseKeys(data []byte) ([]Key, error) {
	var keys []Key
	var err error
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		keys, err = parseJWKS(t)
	} else {
		keys, err = parsePEMKeys(data)
	}
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("token: no public key found")
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.ID] {
			return nil, fmt.Errorf("token: key id %q appears twice", k.ID)
		}
		seen[k.ID] = true
	}
	return keys, nil
}

func parseJWKS(data []byte) ([]Key, error) {
	var set jwkSet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("token: JWK set: %w", err)
	}
	keys := make([]Key, 0, len(set.Keys))
	for i, j := range set.Keys {
		k, err := j.key()
		if err != nil {
			return nil, fmt.Errorf("token: JWK set key %d: %w", i, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func parsePEMKeys(data []byte) ([]Key, error) {
	var keys []Key
	rest := data
	for n := 1; ; n++ {
		var block *pem.Block
		before := rest
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("token: PEM block %d is a %q, want PUBLIC KEY", n, block.Type)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("token: PEM block %d: %w", n, err)
		}
		k, err := NewKey(pub)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		if kid := kidComment(before); kid != "" {
			k.ID = kid
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// kidComment finds the "# kid: name" line in the text before the next PEM
// block of data.
func kidComment(data []byte) string {
	head := data
	if i := bytes.Index(data, []byte("-----BEGIN")); i >= 0 {
		head = data[:i]
	}
	kid := ""
	sc := bufio.NewScanner(bytes.NewReader(head))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "#"); ok {
			if v, ok := strings.CutPrefix(strings.TrimSpace(v), "kid:"); ok {
				kid = strings.TrimSpace(v)
			}
		}
	}
	return kid
}

// MarshalPEM encodes keys as PUBLIC KEY blocks, each preceded by its
// "# kid: name" line, in the format LoadKeys reads.
func MarshalPEM(keys []Key) ([]byte, error) {
	var buf bytes.Buffer
	for _, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(k.Public)
		if err != nil {
			return nil, fmt.Errorf("token: encode key %s: %w", k.ID, err)
		}
		fmt.Fprintf(&buf, "# kid: %s\n", k.ID)
		if err := pem.Encode(&buf, &pem.Block{Type: "PUBLIC KEY", Bytes: der}); err != nil {
			return nil, fmt.Errorf("token: encode key %s: %w", k.ID, err)
		}
	}
	return buf.Bytes(), nil
}

// MarshalJWKS encodes keys as a JWK set, with kid, alg and use, in the
// format LoadKeys reads.
func MarshalJWKS(keys []Key) ([]byte, error) {
	set := jwkSet{Keys: make([]jwk, 0, len(keys))}
	for _, k := range keys {
		j, err := publicJWK(k.Public)
		if err != nil {
			return nil, err
		}
		j.Kid, j.Alg, j.Use = k.ID, k.Alg, "sig"
		set.Keys = append(set.Keys, j)
	}
	b, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("token: encode JWK set: %w", err)
	}
	return append(b, '\n'), nil
}

// LoadPrivateKey reads a signing key (IOP_JWT_PRIVATE_KEY): a PEM PKCS#8
// "PRIVATE KEY" holding an Ed25519 or P-256 key, or a SEC 1 "EC PRIVATE KEY".
func LoadPrivateKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token: read private key: %w", err)
	}
	k, err := ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// ParsePrivateKey parses a signing key from PEM; see LoadPrivateKey.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("token: no PEM block in private key")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("token: PEM block is a %q, want PRIVATE KEY (PKCS#8)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("token: parse private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("token: unsupported private key type %T", key)
	}
	if _, err := NewKey(signer.Public()); err != nil {
		return nil, err
	}
	return signer, nil
}

// MarshalPrivateKey encodes an Ed25519 or P-256 signing key as a PKCS#8
// PEM block, the format LoadPrivateKey reads.
func MarshalPrivateKey(priv crypto.Signer) ([]byte, error) {
	if _, err := NewKey(priv.Public()); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("token: encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// GenerateKey makes a new signing key for alg (AlgEdDSA or AlgES256).
func GenerateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case AlgEdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("token: generate Ed25519 key: %w", err)
		}
		return priv, nil
	case AlgES256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("token: generate P-256 key: %w", err)
		}
		return priv, nil
	}
	return nil, fmt.Errorf("token: algorithm %q: use %s or %s", alg, AlgEdDSA, AlgES256)
}
