// Package token verifies and mints the JWTs that grant access to rooms and
// to the staff API. Every entry point verifies through one Verifier, so the
// access rules live in one place.
package token

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"iop/rooms"
)

// AnyRoom is the room claim of a therapist or staff token that may join any room.
const AnyRoom = "*"

// Claims are the claims of a join or API token (PROTOCOL.md, "Tokens").
type Claims struct {
	Name    string     `json:"name"`
	Role    rooms.Role `json:"role"`
	Room    string     `json:"room"`
	Kind    rooms.Kind `json:"kind,omitempty"`
	Program string     `json:"program,omitempty"`
	jwt.RegisteredClaims
}

// ErrUnauthorized is wrapped by every verification failure; the wrapped text
// says why without repeating the token.
var ErrUnauthorized = errors.New("unauthorized")

// Config is how tokens are verified and minted.
type Config struct {
	// Secret is the HS256 key.
	Secret []byte
	// Audience every token must carry in aud; empty skips the check.
	Audience string
	// Issuer every token must carry in iss; empty accepts any.
	Issuer string
	// Leeway is the clock skew allowed for exp and nbf.
	Leeway time.Duration
}

// DefaultAudience is the aud expected when none is configured.
const DefaultAudience = "iop"

// Verifier checks tokens against the configured key and rules.
type Verifier struct {
	cfg    Config
	parser *jwt.Parser
	now    func() time.Time
}

// NewVerifier returns a verifier pinned to HS256 with cfg's secret.
func NewVerifier(cfg Config) (*Verifier, error) {
	if len(cfg.Secret) < 32 {
		return nil, errors.New("token: the HS256 secret must be at least 32 bytes")
	}
	v := &Verifier{cfg: cfg, now: time.Now}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Verify checks the signature, algorithm, expiry, audience and issuer, and
// that the claims make sense for the role. Errors wrap ErrUnauthorized.
func (v *Verifier) Verify(raw string) (*Claims, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: token missing", ErrUnauthorized)
	}
	var c Claims
	_, err := v.parser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		return v.cfg.Secret, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrUnauthorized, reason(err))
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	return &c, nil
}

// reason turns a jwt error into words that never include the token.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "token malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "signature invalid"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "signing algorithm not accepted"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
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
		return fmt.Errorf("unknown role %q", c.Role)
	}
	if c.Subject == "" {
		return errors.New("sub missing")
	}
	if c.Room == "" {
		return errors.New("room missing")
	}
	if c.Room == AnyRoom && !c.Role.Staff() {
		return errors.New("only therapists and staff may hold a token for any room")
	}
	if c.Kind != "" && (c.Role != rooms.RoleTherapist || !c.Kind.Valid()) {
		return fmt.Errorf("kind %q: only therapists open rooms, of a known kind", c.Kind)
	}
	return nil
}

// Minter signs tokens with the HS256 secret (dev mode, tests, iopctl).
type Minter struct {
	cfg Config
}

// NewMinter returns a minter for cfg's secret, audience and issuer.
func NewMinter(cfg Config) *Minter { return &Minter{cfg: cfg} }

// Mint signs claims valid from now for ttl. It fills iat, nbf, exp, jti and,
// when unset, aud and iss from the configuration.
func (m *Minter) Mint(c Claims, ttl time.Duration) (string, error) {
	now := time.Now()
	c.IssuedAt = jwt.NewNumericDate(now)
	c.NotBefore = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	if c.ID == "" {
		c.ID = RandomID(12)
	}
	if len(c.Audience) == 0 && m.cfg.Audience != "" {
		c.Audience = jwt.ClaimStrings{m.cfg.Audience}
	}
	if c.Issuer == "" {
		c.Issuer = m.cfg.Issuer
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(m.cfg.Secret)
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
