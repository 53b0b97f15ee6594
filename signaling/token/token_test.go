package token

import (
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"iop/rooms"
)

const testSecret = "test-secret-test-secret-test-secret-0123"

// codeOf maps a verification outcome to the protocol error code a join
// would get: unauthorized for a token Verify refuses, forbidden for a valid
// token that does not grant the room.
func codeOf(v *Verifier, tok, room string) (string, error) {
	c, err := v.Verify(tok)
	switch {
	case errors.Is(err, ErrUnauthorized):
		return "unauthorized", err
	case err != nil:
		return "internal", err
	case c.Grant().May(rooms.PermJoin, rooms.Target{Room: room}) != nil:
		return "forbidden", nil
	}
	return "", nil
}

// claims returns valid claims for role in room r1, expiring in an hour.
func claims(role rooms.Role, room string) Claims {
	now := time.Now()
	c := Claims{Name: "Alex", Role: role, Room: room, Program: "p1"}
	c.Subject = "sub-" + string(role)
	c.Audience = jwt.ClaimStrings{DefaultAudience}
	c.IssuedAt = jwt.NewNumericDate(now)
	c.NotBefore = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(time.Hour))
	c.ID = RandomID(8)
	return c
}

// with returns c changed by f.
func with(c Claims, f func(*Claims)) Claims { f(&c); return c }

// sign signs claims with any method and key, kid in the header unless empty,
// bypassing the Minter's checks so that bad tokens can be made.
func sign(t *testing.T, m jwt.SigningMethod, key any, kid string, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

// tamper replaces the payload of tok, keeping its header and signature.
func tamper(t *testing.T, tok string, c Claims) string {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func mustKey(t *testing.T, alg string) (Key, crypto.Signer) {
	t.Helper()
	priv, err := GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	k, err := PublicKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return k, priv
}

func mustVerifier(t *testing.T, cfg Config) *Verifier {
	t.Helper()
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// TestVerify is acceptance 1 at the token level: every token a client might
// present, and the protocol error code a join with it would get.
func TestVerify(t *testing.T) {
	secret := []byte(testSecret)
	edKey, edPriv := mustKey(t, AlgEdDSA)
	esKey, esPriv := mustKey(t, AlgES256)
	_, strangerPriv := mustKey(t, AlgEdDSA)

	hs := mustVerifier(t, Config{Secret: secret, Leeway: DefaultLeeway})
	hsIss := mustVerifier(t, Config{Secret: secret, Issuer: "https://ehr.example", Leeway: DefaultLeeway})
	asym := mustVerifier(t, Config{Keys: []Key{edKey, esKey}, Leeway: DefaultLeeway})
	single := mustVerifier(t, Config{Keys: []Key{edKey}, Leeway: DefaultLeeway})

	const room = "r1"
	client := claims(rooms.RoleClient, room)
	valid := sign(t, jwt.SigningMethodHS256, secret, "", client)
	edPEM, _ := x509.MarshalPKIXPublicKey(edKey.Public)

	tests := []struct {
		name   string
		v      *Verifier
		tok    string
		room   string // the room joined; room if empty
		code   string // "" for success
		reason string // in the error
	}{
		{"therapist", hs, sign(t, jwt.SigningMethodHS256, secret, "", claims(rooms.RoleTherapist, room)), "", "", ""},
		{"client", hs, valid, "", "", ""},
		{"family", hs, sign(t, jwt.SigningMethodHS256, secret, "", claims(rooms.RoleFamily, room)), "", "", ""},
		{"staff granted one room", hs, sign(t, jwt.SigningMethodHS256, secret, "", claims(rooms.RoleStaff, room)), "", "", ""},
		{"therapist any room", hs, sign(t, jwt.SigningMethodHS256, secret, "", claims(rooms.RoleTherapist, AnyRoom)), "", "", ""},
		{"therapist with kind", hs, sign(t, jwt.SigningMethodHS256, secret, "", with(claims(rooms.RoleTherapist, room), func(c *Claims) { c.Kind = rooms.KindFamily })), "", "", ""},
		{"staff any room is API only", hs, sign(t, jwt.SigningMethodHS256, secret, "", claims(rooms.RoleStaff, AnyRoom)), "", "forbidden", ""},
		{"client in a room not granted", hs, valid, "r2", "forbidden", ""},
		{"therapist joining the room named *", hs, sign(t, jwt.SigningMethodHS256, secret, "", claims(rooms.RoleTherapist, AnyRoom)), AnyRoom, "forbidden", ""},
		{"EdDSA", asym, sign(t, jwt.SigningMethodEdDSA, edPriv, edKey.ID, client), "", "", ""},
		{"ES256", asym, sign(t, jwt.SigningMethodES256, esPriv, esKey.ID, client), "", "", ""},
		{"single key, no kid", single, sign(t, jwt.SigningMethodEdDSA, edPriv, "", client), "", "", ""},
		{"expired within leeway", hs, sign(t, jwt.SigningMethodHS256, secret, "", with(client, func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-3 * time.Second)) })), "", "", ""},
		{"issuer configured and matching", hsIss, sign(t, jwt.SigningMethodHS256, secret, "", with(client, func(c *Claims) { c.Issuer = "https://ehr.example" })), "", "", ""},

		{"missing", hs, "", "", "unauthorized", "token missing"},
		{"garbage", hs, "not.a.jwt", "", "unauthorized", "malformed"},
		{"expired", hs, sign(t, jwt.SigningMethodHS256, secret, "", with(client, func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute)) })), "", "unauthorized", "expired"},
		{"not yet valid", hs, sign(t, jwt.SigningMethodHS256, secret, "", with(client, func(c *Claims) { c.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Minute)) })), "", "unauthorized", "not valid yet"},
		{"missing exp", hs, sign(t, jwt.SigningMethodHS256, secret, "", with(client, func(c *Claims) { c.ExpiresAt = nil })), "", "unauthorized", "exp missing"},
		{"wrong aud", hs, sign(t, jwt.SigningMethodHS256, secret, "", with(client, func(c *Claims) { c.Audience = jwt.ClaimStrings{"other-app"} })), "", "unauthorized", "audience"},
		{"missing aud", hs, sign(t, jwt.SigningMethodHS256, secret, "", with(client, func(c *Claims) { c.Audience = nil })), "", "unauthorized", "aud missing"},
		{"wrong iss", hsIss, sign(t, jwt.SigningMethodHS256, secret, "", with(client, func(c *Claims) { c.Issuer = "https://evil.example" })), "", "unauthorized", "issuer"},
		{"missing iss", hsIss, valid, "", "unauthorized", "iss missing"},
		{"alg none", hs, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", client), "", "unauthorized", "algorithm not accepted"},
		{"alg none to a key set", asym, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, edKey.ID, client), "", "unauthorized", "algorithm not accepted"},
		{"HS512 with the secret", hs, sign(t, jwt.SigningMethodHS512, secret, "", client), "", "unauthorized", "algorithm not accepted"},
		{"HS256 to EdDSA config, public key as secret", asym, sign(t, jwt.SigningMethodHS256, []byte(edKey.Public.(ed25519.PublicKey)), edKey.ID, client), "", "unauthorized", "algorithm not accepted"},
		{"HS256 to EdDSA config, public key DER as secret", single, sign(t, jwt.SigningMethodHS256, edPEM, "", client), "", "unauthorized", "algorithm not accepted"},
		{"EdDSA to HS256 config", hs, sign(t, jwt.SigningMethodEdDSA, edPriv, "", client), "", "unauthorized", "algorithm not accepted"},
		{"EdDSA naming the ES256 key", asym, sign(t, jwt.SigningMethodEdDSA, edPriv, esKey.ID, client), "", "unauthorized", "does not fit the key"},
		{"ES256 to an EdDSA-only config", single, sign(t, jwt.SigningMethodES256, esPriv, "", client), "", "unauthorized", "algorithm not accepted"},
		{"unknown kid", asym, sign(t, jwt.SigningMethodEdDSA, strangerPriv, "someone-else", client), "", "unauthorized", "unknown key id"},
		{"kid not a string", asym, func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, client)
			tok.Header["kid"] = 7
			s, _ := tok.SignedString(edPriv)
			return s
		}(), "", "unauthorized", "unknown key id"},
		{"no kid, several keys", asym, sign(t, jwt.SigningMethodEdDSA, edPriv, "", client), "", "unauthorized", "key id missing"},
		{"right kid, another key", asym, sign(t, jwt.SigningMethodEdDSA, strangerPriv, edKey.ID, client), "", "unauthorized", "signature invalid"},
		{"another secret", hs, sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-0123456"), "", client), "", "unauthorized", "signature invalid"},
		{"tampered payload", hs, tamper(t, valid, with(client, func(c *Claims) { c.Role = rooms.RoleTherapist; c.Room = AnyRoom })), "", "unauthorized", "signature invalid"},
		{"tampered payload, EdDSA", asym, tamper(t, sign(t, jwt.SigningMethodEdDSA, edPriv, edKey.ID, client), with(client, func(c *Claims) { c.Room = "r2" })), "", "unauthorized", "signature invalid"},
		{"client for any room", hs, sign(t, jwt.SigningMethodHS256, secret, "", claims(rooms.RoleClient, AnyRoom)), "", "unauthorized", "any room"},
		{"family for any room", asym, sign(t, jwt.SigningMethodES256, esPriv, esKey.ID, claims(rooms.RoleFamily, AnyRoom)), "", "unauthorized", "any room"},
		{"unknown role", hs, sign(t, jwt.SigningMethodHS256, secret, "", claims("admin", room)), "", "unauthorized", "unknown role"},
		{"client with kind", hs, sign(t, jwt.SigningMethodHS256, secret, "", with(client, func(c *Claims) { c.Kind = rooms.KindGroup })), "", "unauthorized", "kind"},
		{"therapist with unknown kind", hs, sign(t, jwt.SigningMethodHS256, secret, "", with(claims(rooms.RoleTherapist, room), func(c *Claims) { c.Kind = "party" })), "", "unauthorized", "kind"},
		{"no sub", hs, sign(t, jwt.SigningMethodHS256, secret, "", with(client, func(c *Claims) { c.Subject = "" })), "", "unauthorized", "sub missing"},
		{"no room", hs, sign(t, jwt.SigningMethodHS256, secret, "", with(client, func(c *Claims) { c.Room = "" })), "", "unauthorized", "room missing"},
		{"no program", hs, sign(t, jwt.SigningMethodHS256, secret, "", with(client, func(c *Claims) { c.Program = "" })), "", "unauthorized", "program missing"},
		{"program outside the grammar", hs, sign(t, jwt.SigningMethodHS256, secret, "", with(client, func(c *Claims) { c.Program = "a/b" })), "", "unauthorized", "program"},
		{"room outside the grammar", hs, sign(t, jwt.SigningMethodHS256, secret, "", with(client, func(c *Claims) { c.Room = "r1/../x" })), "", "unauthorized", "room"},
		{"exp a century away", hs, sign(t, jwt.SigningMethodHS256, secret, "", with(client, func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().AddDate(100, 0, 0)) })), "", "unauthorized", "ahead"},
		{"exp 25 h away", hs, sign(t, jwt.SigningMethodHS256, secret, "", with(client, func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(25 * time.Hour)) })), "", "unauthorized", "ahead"},
		{"invitation 6 days away", hs, sign(t, jwt.SigningMethodHS256, secret, "", with(claims(rooms.RoleFamily, room), func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(6 * 24 * time.Hour)) })), "", "", ""},
		{"invitation 8 days away", hs, sign(t, jwt.SigningMethodHS256, secret, "", with(claims(rooms.RoleFamily, room), func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(8 * 24 * time.Hour)) })), "", "unauthorized", "ahead"},
		{"iat in the future", hs, sign(t, jwt.SigningMethodHS256, secret, "", with(client, func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(time.Now().Add(time.Hour)) })), "", "unauthorized", "future"},
		{"iat within the leeway", hs, sign(t, jwt.SigningMethodHS256, secret, "", with(client, func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(time.Now().Add(3 * time.Second)) })), "", "", ""},
		{"exp a string", hs, sign(t, jwt.SigningMethodHS256, secret, "", jwt.MapClaims{
			"sub": "c", "name": "Alex", "role": "client", "room": room, "program": "p1", "aud": DefaultAudience,
			"exp": fmt.Sprint(time.Now().Add(time.Hour).Unix()),
		}), "", "unauthorized", "not a number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			joined := tc.room
			if joined == "" {
				joined = room
			}
			code, err := codeOf(tc.v, tc.tok, joined)
			if code != tc.code {
				t.Fatalf("code %q (err %v), want %q", code, err, tc.code)
			}
			if err == nil {
				return
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not say %q", err, tc.reason)
			}
			for _, part := range strings.Split(tc.tok, ".") {
				if len(part) > 8 && strings.Contains(err.Error(), part) {
					t.Errorf("error %q repeats part of the token", err)
				}
			}
		})
	}
}

// TestMintVerifies: what a Minter signs, a Verifier of the same
// configuration accepts, with every claim intact, for each algorithm.
func TestMintVerifies(t *testing.T) {
	edKey, edPriv := mustKey(t, AlgEdDSA)
	esKey, esPriv := mustKey(t, AlgES256)
	tests := []struct {
		name    string
		mint    Config
		verify  Config
		wantKID string
	}{
		{"HS256", Config{Secret: []byte(testSecret), Issuer: "ehr"}, Config{Secret: []byte(testSecret), Issuer: "ehr"}, ""},
		{"EdDSA", Config{PrivateKey: edPriv}, Config{Keys: []Key{esKey, edKey}}, edKey.ID},
		{"ES256", Config{PrivateKey: esPriv}, Config{Keys: []Key{edKey, esKey}}, esKey.ID},
		{"custom audience", Config{Secret: []byte(testSecret), Audience: "clinic"}, Config{Secret: []byte(testSecret), Audience: "clinic"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := Claims{Name: "Sam", Role: rooms.RoleTherapist, Room: AnyRoom, Kind: rooms.KindIndividual, Program: "evening"}
			in.Subject = "t-1"
			tok, err := NewMinter(tc.mint).Mint(in, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			h, _, err := jwt.NewParser().ParseUnverified(tok, &Claims{})
			if err != nil {
				t.Fatal(err)
			}
			if kid, _ := h.Header["kid"].(string); kid != tc.wantKID {
				t.Errorf("kid %q, want %q", kid, tc.wantKID)
			}
			c, err := mustVerifier(t, tc.verify).Verify(tok)
			if err != nil {
				t.Fatalf("minted token refused: %v", err)
			}
			if c.Subject != "t-1" || c.Name != "Sam" || c.Role != rooms.RoleTherapist || c.Room != AnyRoom ||
				c.Kind != rooms.KindIndividual || c.Program != "evening" || c.ID == "" || c.Issuer != tc.mint.Issuer {
				t.Errorf("claims read back as %+v", c)
			}
		})
	}
}
