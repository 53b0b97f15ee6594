package token

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"iop/rooms"
)

// FuzzVerify feeds the join message's token to both verifiers (HS256 and
// a public key set): every refusal must be ErrUnauthorized (a join gets
// unauthorized, never internal), and what passes must carry claims a grant
// can be made from.
func FuzzVerify(f *testing.F) {
	hs, err := NewVerifier(Config{Secret: []byte(testSecret), Leeway: DefaultLeeway})
	if err != nil {
		f.Fatal(err)
	}
	edPriv, err := GenerateKey(AlgEdDSA)
	if err != nil {
		f.Fatal(err)
	}
	edKey, err := PublicKey(edPriv)
	if err != nil {
		f.Fatal(err)
	}
	ed, err := NewVerifier(Config{Keys: []Key{edKey}, Leeway: DefaultLeeway})
	if err != nil {
		f.Fatal(err)
	}
	// Seeds: a good token of each kind (valid for a year, so that the
	// corpus keeps exercising the accepting path), alg none, a wrong key.
	good := func(cfg Config, c Claims) string {
		tok, err := NewMinter(cfg).Mint(c, 24*time.Hour)
		if err != nil {
			f.Fatal(err)
		}
		return tok
	}
	c := Claims{Name: "Alex", Role: rooms.RoleClient, Room: "g1", Program: "p1"}
	c.Subject = "s1"
	f.Add(good(Config{Secret: []byte(testSecret)}, c))
	f.Add(good(Config{PrivateKey: edPriv, Keys: []Key{edKey}}, c))
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "s1", "role": "therapist", "program": "p1", "room": "*", "exp": time.Now().Add(time.Hour).Unix(), "aud": DefaultAudience})
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	f.Add(noneTok)
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.")
	f.Add("...")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		for _, v := range []*Verifier{hs, ed} {
			c, err := v.Verify(raw)
			if err != nil {
				if !errors.Is(err, ErrUnauthorized) {
					t.Fatalf("Verify refused with %v, not ErrUnauthorized", err)
				}
				continue
			}
			g := c.Grant()
			if rooms.ValidProgramID(g.Program) != nil || g.Sub == "" {
				t.Fatalf("accepted claims without a valid program or sub: %+v", g)
			}
		}
	})
}

// FuzzParseKeys feeds IOP_JWT_KEYS files (PEM or JWK set): a set that
// parses writes back (as PEM and as JWKS) to one that parses to the same
// key ids.
func FuzzParseKeys(f *testing.F) {
	var keys []Key
	for _, alg := range []string{AlgEdDSA, AlgES256} {
		priv, err := GenerateKey(alg)
		if err != nil {
			f.Fatal(err)
		}
		k, err := PublicKey(priv)
		if err != nil {
			f.Fatal(err)
		}
		keys = append(keys, k)
	}
	pem, err := MarshalPEM(keys)
	if err != nil {
		f.Fatal(err)
	}
	jwks, err := MarshalJWKS(keys)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pem)
	f.Add(jwks)
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":""}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseKeys(data)
		if err != nil {
			return
		}
		for _, marshal := range []func([]Key) ([]byte, error){MarshalPEM, MarshalJWKS} {
			out, err := marshal(got)
			if err != nil {
				t.Fatalf("parsed keys do not write back: %v", err)
			}
			again, err := ParseKeys(out)
			if err != nil || len(again) != len(got) {
				t.Fatalf("written keys do not parse back: %d keys, %v", len(again), err)
			}
		}
	})
}

// FuzzParsePrivateKey feeds IOP_JWT_PRIVATE_KEY files.
func FuzzParsePrivateKey(f *testing.F) {
	for _, alg := range []string{AlgEdDSA, AlgES256} {
		priv, err := GenerateKey(alg)
		if err != nil {
			f.Fatal(err)
		}
		b, err := MarshalPrivateKey(priv)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		priv, err := ParsePrivateKey(data)
		if err != nil {
			return
		}
		if _, err := PublicKey(priv); err != nil {
			t.Fatalf("a private key that parses has no usable public key: %v", err)
		}
	})
}
