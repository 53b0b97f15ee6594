// Package token verifies and mints the JWTs that grant access to rooms and
// to the staff API. Every entry point verifies through one Verifier, so the
// access rules live in one place.
//
// The algorithm is pinned by configuration: HS256 with a shared secret
// (IOP_JWT_SECRET), or EdDSA / ES256 with the public keys of a PEM or JWK set
// file (IOP_JWT_KEYS), several at once, selected by the token's kid header so
// that keys rotate without downtime. A token signed with any other algorithm,
// or with an algorithm that does not fit the key its kid names, is refused.
package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"iop/rooms"
)

// AnyRoom is the room claim of a therapist or staff token that may join any room.
const AnyRoom = rooms.AnyRoom

// DefaultAudience is the aud expected when none is configured.
const DefaultAudience = "iop"

// DefaultLeeway is the clock skew for exp and nbf that iopd and iopctl
// configure unless told otherwise (IOP_JWT_LEEWAY).
const DefaultLeeway = 10 * time.Second

// MinSecretLen is the shortest HS256 secret accepted, in bytes.
const MinSecretLen = 32

// DefaultMaxTTL is how far ahead a token's exp may lie unless configured
// otherwise (IOP_JWT_MAX_TTL): join and staff tokens are short-lived.
const DefaultMaxTTL = 24 * time.Hour

// MaxInviteTTL is how far ahead a family invitation's exp may lie: a
// therapist may send one a week ahead of the session.
const MaxInviteTTL = 7 * 24 * time.Hour

// Claims are the claims of a join or API token (docs/protocol.md, 3 "Tokens").
type Claims struct {
	Name string     `json:"name"`
	Role rooms.Role `json:"role"`
	Room string     `json:"room"`
	Kind rooms.Kind `json:"kind,omitempty"`
	// Program is required: everything the bearer does is in it.
	Program string `json:"program"`
	// Cohort, on a therapist's token, restricts the room it opens to
	// clients enrolled in that cohort (e.g. "women", "veterans").
	Cohort string `json:"cohort,omitempty"`
	// Cohorts are the cohorts a client is enrolled in.
	Cohorts []string `json:"cohorts,omitempty"`
	jwt.RegisteredClaims
}

// ErrUnauthorized is wrapped by every verification failure; the wrapped text
// says why without repeating the token.
var ErrUnauthorized = errors.New("unauthorized")

// Reasons a key lookup refuses a token; Verify reports them as ErrUnauthorized.
var (
	errAlg        = errors.New("signing algorithm not accepted")
	errAlgKey     = errors.New("signing algorithm does not fit the key")
	errUnknownKID = errors.New("unknown key id")
	errNoKID      = errors.New("key id missing")
)

// Config is how tokens are verified and minted. Verification uses exactly
// one of Secret (HS256) or public keys (Keys and KeysFile: EdDSA / ES256).
type Config struct {
	// Secret is the HS256 key, at least MinSecretLen bytes (IOP_JWT_SECRET).
	Secret []byte
	// KeysFile is a PEM or JWK set file of public keys (IOP_JWT_KEYS); see
	// ParseKeys. Verifier.Reload reads it again.
	KeysFile string
	// Keys are public keys given directly, used together with KeysFile's.
	Keys []Key
	// PrivateKey, when set, makes a Minter sign with EdDSA or ES256 (by its
	// type) instead of the secret, naming its thumbprint as kid; see
	// LoadPrivateKey (IOP_JWT_PRIVATE_KEY). The verifier does not use it.
	PrivateKey crypto.Signer
	// Audience every token must carry in aud; empty means DefaultAudience.
	Audience string
	// Issuer every token must carry in iss; empty accepts any.
	Issuer string
	// Leeway is the clock skew allowed for exp, nbf and iat (zero: none;
	// iopd configures DefaultLeeway).
	Leeway time.Duration
	// MaxTTL is how far ahead of now a token's exp may lie (zero:
	// DefaultMaxTTL); family invitations may lie up to MaxInviteTTL ahead.
	MaxTTL time.Duration
}

func (c Config) maxTTL(role rooms.Role) time.Duration {
	m := c.MaxTTL
	if m <= 0 {
		m = DefaultMaxTTL
	}
	if role == rooms.RoleFamily {
		m = max(m, MaxInviteTTL)
	}
	return m
}

func (c Config) audience() string {
	if c.Audience == "" {
		return DefaultAudience
	}
	return c.Audience
}

// Verifier checks tokens against the configured key and rules. It is safe
// for concurrent use, also while its keys are replaced.
type Verifier struct {
	cfg    Config
	parser *jwt.Parser
	now    func() time.Time
	keys   atomic.Pointer[keySet] // nil in HS256 mode
}

// keySet is an immutable set of public keys, swapped whole on rotation.
type keySet struct {
	byID map[string]Key
	only *Key // the key a token without kid may use: set when there is one key
	algs []string
}

// NewVerifier returns a verifier pinned to HS256 with cfg's secret, or to
// the algorithms of cfg's public keys (Keys, and those of KeysFile).
func NewVerifier(cfg Config) (*Verifier, error) {
	hasKeys := cfg.KeysFile != "" || len(cfg.Keys) > 0
	switch {
	case len(cfg.Secret) > 0 && hasKeys:
		return nil, errors.New("token: configure either an HS256 secret (IOP_JWT_SECRET) or public keys (IOP_JWT_KEYS), not both")
	case len(cfg.Secret) == 0 && !hasKeys:
		return nil, errors.New("token: no key configured: set IOP_JWT_SECRET or IOP_JWT_KEYS")
	case !hasKeys && len(cfg.Secret) < MinSecretLen:
		return nil, fmt.Errorf("token: the HS256 secret must be at least %d bytes", MinSecretLen)
	}
	if cfg.Leeway < 0 {
		return nil, errors.New("token: negative leeway")
	}
	v := &Verifier{cfg: cfg, now: time.Now}
	opts := []jwt.ParserOption{
		// The algorithm is checked against the key in keyFunc, which every
		// token goes through: a fixed list here could not follow rotation.
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), // an iat in the future (beyond the leeway) is refused
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
		jwt.WithAudience(cfg.audience()),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	v.parser = jwt.NewParser(opts...)
	if hasKeys {
		if err := v.Reload(); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Reload reads the configured KeysFile again and verifies with its keys
// (plus Config.Keys) from now on: call it after adding or removing a key.
// On error the verifier keeps the keys it had.
func (v *Verifier) Reload() error {
	if v.keys.Load() == nil && len(v.cfg.Secret) > 0 {
		return errors.New("token: HS256 verifier has no key file to reload")
	}
	keys := slices.Clone(v.cfg.Keys)
	if v.cfg.KeysFile != "" {
		fromFile, err := LoadKeys(v.cfg.KeysFile)
		if err != nil {
			return err
		}
		keys = append(keys, fromFile...)
	}
	return v.SetKeys(keys)
}

// SetKeys replaces the public keys tokens are verified with, at once for
// every later Verify. Tokens signed with a key no longer in the set are
// refused. It fails on an empty set, on duplicate or empty kids, and on an
// HS256 verifier.
func (v *Verifier) SetKeys(keys []Key) error {
	if len(v.cfg.Secret) > 0 {
		return errors.New("token: HS256 verifier takes no public keys")
	}
	if len(keys) == 0 {
		return errors.New("token: no public key configured")
	}
	ks := &keySet{byID: make(map[string]Key, len(keys))}
	for _, k := range keys {
		want, err := NewKey(k.Public)
		if err != nil {
			return err
		}
		if k.Alg != want.Alg {
			return fmt.Errorf("token: key %q: alg %q does not fit its type (%s)", k.ID, k.Alg, want.Alg)
		}
		if k.ID == "" {
			return errors.New("token: key without id")
		}
		if _, dup := ks.byID[k.ID]; dup {
			return fmt.Errorf("token: key id %q appears twice", k.ID)
		}
		ks.byID[k.ID] = k
		if !slices.Contains(ks.algs, k.Alg) {
			ks.algs = append(ks.algs, k.Alg)
		}
	}
	if len(keys) == 1 {
		k := keys[0]
		ks.only = &k
	}
	v.keys.Store(ks)
	return nil
}

// KeyIDs returns the kids of the keys in use, sorted (none for HS256), for
// logging what a reload changed.
func (v *Verifier) KeyIDs() []string {
	ks := v.keys.Load()
	if ks == nil {
		return nil
	}
	ids := make([]string, 0, len(ks.byID))
	for id := range ks.byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// keyFunc picks the key for t, refusing any algorithm but the configured
// ones and any key whose type does not fit the token's algorithm.
func (v *Verifier) keyFunc(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	ks := v.keys.Load()
	if ks == nil {
		if alg != AlgHS256 {
			return nil, errAlg
		}
		return v.cfg.Secret, nil
	}
	if !slices.Contains(ks.algs, alg) {
		return nil, errAlg
	}
	var k Key
	switch kid, ok := t.Header["kid"]; {
	case ok:
		s, _ := kid.(string)
		found, known := ks.byID[s]
		if !known {
			return nil, errUnknownKID
		}
		k = found
	case ks.only != nil:
		k = *ks.only
	default:
		return nil, errNoKID
	}
	if k.Alg != alg {
		return nil, errAlgKey
	}
	return k.Public, nil
}

// Verify checks the signature, algorithm, key, expiry, audience and issuer,
// and that the claims make sense for the role. Errors wrap ErrUnauthorized.
func (v *Verifier) Verify(raw string) (*Claims, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: token missing", ErrUnauthorized)
	}
	var c Claims
	t, err := v.parser.ParseWithClaims(raw, &c, v.keyFunc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnauthorized, refusal{reason(err), err})
	}
	if err := numericTimes(v.parser, t.Raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	if limit := v.cfg.maxTTL(c.Role); c.ExpiresAt.Sub(v.now()) > limit+v.cfg.Leeway {
		return nil, fmt.Errorf("%w: exp is more than %s ahead", ErrUnauthorized, limit)
	}
	return &c, nil
}

// numericTimes refuses exp, nbf and iat written as JSON strings, which the
// JWT library would read as numbers: RFC 7519 makes them NumericDates.
func numericTimes(p *jwt.Parser, raw string) error {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return errors.New("token malformed")
	}
	payload, err := p.DecodeSegment(parts[1])
	if err != nil {
		return errors.New("token malformed")
	}
	var times struct {
		Exp, Nbf, Iat json.RawMessage
	}
	if err := json.Unmarshal(payload, &times); err != nil {
		return errors.New("token malformed")
	}
	for _, t := range []json.RawMessage{times.Exp, times.Nbf, times.Iat} {
		if len(t) > 0 && (t[0] == '"' || t[0] == '{' || t[0] == '[') {
			return errors.New("a time claim (exp, nbf, iat) is not a number")
		}
	}
	return nil
}

// refusal is a verification failure in words that never include the
// token, keeping the library's error for Expired and NotYetValid.
type refusal struct {
	words string
	err   error
}

func (r refusal) Error() string { return r.words }
func (r refusal) Unwrap() error { return r.err }

// Expired reports whether Verify refused a token only because it expired:
// the signature was good, so the holder had a real link once.
func Expired(err error) bool { return errors.Is(err, jwt.ErrTokenExpired) }

// NotYetValid reports whether Verify refused a token because its nbf (or
// iat) lies in the future.
func NotYetValid(err error) bool {
	return errors.Is(err, jwt.ErrTokenNotValidYet) || errors.Is(err, jwt.ErrTokenUsedBeforeIssued)
}

// reason turns a jwt error into words that never include the token.
func reason(err error) string {
	for _, e := range []error{errAlg, errAlgKey, errUnknownKID, errNoKID} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "token malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "signature invalid"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "signing algorithm not accepted"
	case errors.Is(err, jwt.ErrInvalidType):
		return "a time claim (exp, nbf, iat) is not a number"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		for _, claim := range []string{"exp", "aud", "iss"} {
			if strings.Contains(err.Error(), claim+" claim is required") {
				return claim + " missing"
			}
		}
		return "required claim missing"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token issued in the future"
	}
	return "token invalid"
}

func (c *Claims) check() error {
	if !c.Role.Valid() {
		return fmt.Errorf("unknown role %.32q", c.Role)
	}
	if c.Subject == "" {
		return errors.New("sub missing")
	}
	if c.Program == "" {
		return errors.New("program missing")
	}
	if err := rooms.ValidProgramID(c.Program); err != nil {
		return err
	}
	if c.Room == "" {
		return errors.New("room missing")
	}
	if c.Room == AnyRoom && !c.Role.Staff() {
		return errors.New("only therapists and staff may hold a token for any room")
	}
	if c.Room != AnyRoom {
		if err := rooms.ValidRoomID(c.Room); err != nil {
			return err
		}
	}
	if len(c.Name) > 128 || len(c.Subject) > 128 || len(c.Cohort) > 64 || len(c.Cohorts) > 16 {
		return errors.New("name, sub or cohorts too long")
	}
	if c.Kind != "" && (c.Role != rooms.RoleTherapist || !c.Kind.Valid()) {
		return fmt.Errorf("kind %.32q: only therapists open rooms, of a known kind", c.Kind)
	}
	if c.Cohort != "" && c.Role != rooms.RoleTherapist {
		return errors.New("only therapists restrict rooms to a cohort")
	}
	return nil
}

// SingleUse reports whether the token is an invitation that admits once:
// family members join by single-use invites, whose jti is consumed on join.
func (c *Claims) SingleUse() bool { return c.Role == rooms.RoleFamily }

// Grant is what the verified claims allow: the one authority (rooms.Grant)
// that every route and message asks.
func (c *Claims) Grant() rooms.Grant {
	g := rooms.Grant{
		Program: c.Program, Sub: c.Subject, Name: c.Name, Role: c.Role, Room: c.Room,
		Kind: c.Kind, Cohort: c.Cohort, Cohorts: c.Cohorts,
	}
	if c.SingleUse() {
		g.Invitation = &rooms.Invitation{JTI: c.ID}
		if c.ExpiresAt != nil {
			g.Invitation.Expires = c.ExpiresAt.Unix()
		}
	}
	return g
}

// Minter signs tokens (dev mode, invites, tests, iopctl): with the EdDSA or
// ES256 private key of its configuration if one is set, else with the HS256
// secret.
type Minter struct {
	cfg    Config
	method jwt.SigningMethod
	key    any
	kid    string
	err    error
	now    func() time.Time
}

// NewMinter returns a minter for cfg's private key or secret, audience and
// issuer. A key it cannot sign with makes every Mint fail.
func NewMinter(cfg Config) *Minter {
	m := &Minter{cfg: cfg, now: time.Now}
	switch priv := cfg.PrivateKey.(type) {
	case nil:
		m.method, m.key = jwt.SigningMethodHS256, cfg.Secret
		if len(cfg.Secret) == 0 {
			m.err = errors.New("token: no signing key: set a secret or a private key")
		}
		return m
	case ed25519.PrivateKey:
		m.method, m.key = jwt.SigningMethodEdDSA, priv
	case *ecdsa.PrivateKey:
		m.method, m.key = jwt.SigningMethodES256, priv
	default:
		m.err = fmt.Errorf("token: cannot sign with a %T: use an Ed25519 or P-256 key", cfg.PrivateKey)
		return m
	}
	pub, err := PublicKey(cfg.PrivateKey)
	if err != nil {
		m.err = err
		return m
	}
	m.kid = pub.ID
	return m
}

// Mint signs claims valid from now for ttl. It fills iat, nbf, exp, jti and,
// when unset, aud and iss from the configuration, and refuses claims that
// Verify would refuse (unknown role, no sub or room, "*" or kind for a role
// that may not hold them).
func (m *Minter) Mint(c Claims, ttl time.Duration) (string, error) {
	if m.err != nil {
		return "", m.err
	}
	now := m.now()
	c.IssuedAt = jwt.NewNumericDate(now)
	c.NotBefore = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	if c.ID == "" {
		c.ID = RandomID(12)
	}
	if len(c.Audience) == 0 {
		c.Audience = jwt.ClaimStrings{m.cfg.audience()}
	}
	if c.Issuer == "" {
		c.Issuer = m.cfg.Issuer
	}
	if err := c.check(); err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	t := jwt.NewWithClaims(m.method, c)
	if m.kid != "" {
		t.Header["kid"] = m.kid
	}
	s, err := t.SignedString(m.key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// RandomID returns n random bytes as hex, for ids and secrets.
func RandomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
