package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"iop/rooms"
)

// TestKeyRotation is acceptance 2: while the old and the new key are both in
// the key file, tokens of either verify; once the old key is removed and the
// file reloaded, the old key's tokens are refused and the new key's still
// verify. Both file formats, and SetKeys directly.
func TestKeyRotation(t *testing.T) {
	oldKey, oldPriv := mustKey(t, AlgEdDSA)
	newKey, newPriv := mustKey(t, AlgEdDSA)
	c := claims(rooms.RoleClient, "r1")
	oldTok, err := NewMinter(Config{PrivateKey: oldPriv}).Mint(c, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	newTok, err := NewMinter(Config{PrivateKey: newPriv}).Mint(c, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	type step struct {
		keys           []Key
		oldOK, newOK   bool
		oldWhy, newWhy string
	}
	steps := []step{
		{keys: []Key{oldKey}, oldOK: true, newWhy: "unknown key id"},
		{keys: []Key{oldKey, newKey}, oldOK: true, newOK: true},
		{keys: []Key{newKey}, newOK: true, oldWhy: "unknown key id"},
	}
	formats := []struct {
		name    string
		marshal func([]Key) ([]byte, error)
	}{
		{"PEM", MarshalPEM},
		{"JWKS", MarshalJWKS},
		{"SetKeys", nil},
	}
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys")
			var v *Verifier
			for i, s := range steps {
				if f.marshal == nil {
					if v == nil {
						v = mustVerifier(t, Config{Keys: s.keys})
					} else if err := v.SetKeys(s.keys); err != nil {
						t.Fatal(err)
					}
				} else {
					b, err := f.marshal(s.keys)
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, b, 0o644); err != nil {
						t.Fatal(err)
					}
					if v == nil {
						v = mustVerifier(t, Config{KeysFile: path})
					} else if err := v.Reload(); err != nil {
						t.Fatalf("reload: %v", err)
					}
				}
				for _, tc := range []struct {
					name, tok string
					ok        bool
					why       string
				}{{"old", oldTok, s.oldOK, s.oldWhy}, {"new", newTok, s.newOK, s.newWhy}} {
					_, err := v.Verify(tc.tok)
					if tc.ok && err != nil {
						t.Errorf("step %d: %s key's token refused: %v", i, tc.name, err)
					}
					if !tc.ok && (!errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tc.why)) {
						t.Errorf("step %d: %s key's token: err %v, want unauthorized: %s", i, tc.name, err, tc.why)
					}
				}
			}
		})
	}
}

// TestReloadKeepsKeysOnError: a broken key file written during rotation does
// not leave the server without keys.
func TestReloadKeepsKeysOnError(t *testing.T) {
	k, priv := mustKey(t, AlgEdDSA)
	path := filepath.Join(t.TempDir(), "keys.pem")
	b, _ := MarshalPEM([]Key{k})
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	v := mustVerifier(t, Config{KeysFile: path})
	if err := os.WriteFile(path, []byte("-----BEGIN PUBLIC KEY-----\ngarbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := v.Reload(); err == nil {
		t.Fatal("reload accepted a file without keys")
	}
	tok, _ := NewMinter(Config{PrivateKey: priv}).Mint(claims(rooms.RoleClient, "r1"), time.Hour)
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("after a failed reload, the old key no longer verifies: %v", err)
	}
	if ids := v.KeyIDs(); len(ids) != 1 || ids[0] != k.ID {
		t.Errorf("KeyIDs %v, want [%s]", ids, k.ID)
	}
}

// TestThumbprint checks the kid derivation against RFC 8037, appendix A.3.
func TestThumbprint(t *testing.T) {
	keys, err := ParseKeys([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; keys[0].ID != want {
		t.Errorf("thumbprint %s, want %s", keys[0].ID, want)
	}
	if keys[0].Alg != AlgEdDSA {
		t.Errorf("alg %s", keys[0].Alg)
	}
}

// TestParseKeys covers the key files an operator might write, good and bad.
func TestParseKeys(t *testing.T) {
	ed, _ := mustKey(t, AlgEdDSA)
	es, _ := mustKey(t, AlgES256)
	pemOf := func(pub any) string {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	privDER, _ := x509.MarshalPKCS8PrivateKey(edPriv)
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	jwks, _ := MarshalJWKS([]Key{ed, es})

	tests := []struct {
		name    string
		data    string
		wantIDs []string // nil: an error is expected, containing errText
		errText string
	}{
		{"PEM, thumbprint kids", pemOf(ed.Public) + pemOf(es.Public), []string{ed.ID, es.ID}, ""},
		{"PEM, named kids", "# kid: 2026-01\n" + pemOf(ed.Public) + "\n# old key\n# kid: 2025-07\n" + pemOf(es.Public), []string{"2026-01", "2025-07"}, ""},
		{"PEM, MarshalPEM", func() string { b, _ := MarshalPEM([]Key{es, ed}); return string(b) }(), []string{es.ID, ed.ID}, ""},
		{"JWKS, MarshalJWKS", string(jwks), []string{ed.ID, es.ID}, ""},
		{"JWKS, named kid", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"ehr-1","use":"sig","alg":"EdDSA"}]}`, []string{"ehr-1"}, ""},
		{"empty", "", nil, "no public key"},
		{"empty JWKS", `{"keys":[]}`, nil, "no public key"},
		{"private key PEM", privPEM, nil, "want PUBLIC KEY"},
		{"P-384", pemOf(&p384.PublicKey), nil, "only P-256"},
		{"RSA", pemOf(&rsaKey.PublicKey), nil, "unsupported public key type"},
		{"duplicate kid", "# kid: a\n" + pemOf(ed.Public) + "# kid: a\n" + pemOf(es.Public), nil, "twice"},
		{"JWKS with private part", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}`, nil, "private key"},
		{"JWKS alg mismatch", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","alg":"HS256"}]}`, nil, "does not fit"},
		{"JWKS encryption key", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","use":"enc"}]}`, nil, "signing keys"},
		{"JWKS RSA", `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`, nil, "only OKP/Ed25519"},
		{"JWKS EC point off the curve", `{"keys":[{"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"}]}`, nil, "P-256"},
		{"JWKS short x", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`, nil, "32"},
		{"not JSON", `{"keys":`, nil, "JWK set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := ParseKeys([]byte(tc.data))
			if tc.wantIDs == nil {
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("err %v, want one saying %q", err, tc.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, k := range keys {
				ids = append(ids, k.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tc.wantIDs, ",") {
				t.Errorf("kids %v, want %v", ids, tc.wantIDs)
			}
		})
	}
}

// TestPrivateKeyRoundTrip: a key written by MarshalPrivateKey loads back and
// signs tokens its public key verifies.
func TestPrivateKeyRoundTrip(t *testing.T) {
	for _, alg := range []string{AlgEdDSA, AlgES256} {
		t.Run(alg, func(t *testing.T) {
			priv, err := GenerateKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			b, err := MarshalPrivateKey(priv)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParsePrivateKey(b)
			if err != nil {
				t.Fatal(err)
			}
			pub, _ := PublicKey(priv)
			tok, err := NewMinter(Config{PrivateKey: back}).Mint(claims(rooms.RoleFamily, "fam-1"), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := mustVerifier(t, Config{Keys: []Key{pub}}).Verify(tok); err != nil {
				t.Fatalf("token of the reloaded key refused: %v", err)
			}
		})
	}
	if _, err := GenerateKey("RS256"); err == nil {
		t.Error("GenerateKey made an RS256 key")
	}
	if _, err := ParsePrivateKey([]byte("no pem here")); err == nil {
		t.Error("ParsePrivateKey accepted text without PEM")
	}
}

// TestConfigErrors: a verifier must be pinned to exactly one kind of key.
func TestConfigErrors(t *testing.T) {
	k, _ := mustKey(t, AlgEdDSA)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"nothing", Config{}},
		{"short secret", Config{Secret: []byte("short")}},
		{"secret and keys", Config{Secret: []byte(testSecret), Keys: []Key{k}}},
		{"missing key file", Config{KeysFile: filepath.Join(t.TempDir(), "nope.pem")}},
		{"key with wrong alg", Config{Keys: []Key{{ID: "x", Alg: AlgES256, Public: k.Public}}}},
		{"key without id", Config{Keys: []Key{{Alg: AlgEdDSA, Public: k.Public}}}},
		{"negative leeway", Config{Secret: []byte(testSecret), Leeway: -time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewVerifier(tc.cfg); err == nil {
				t.Fatal("NewVerifier accepted it")
			}
		})
	}
	hs := mustVerifier(t, Config{Secret: []byte(testSecret)})
	if err := hs.SetKeys([]Key{k}); err == nil {
		t.Error("an HS256 verifier took public keys")
	}
	if err := hs.Reload(); err == nil {
		t.Error("an HS256 verifier reloaded")
	}
	if _, err := NewMinter(Config{}).Mint(claims(rooms.RoleClient, "r"), time.Hour); err == nil {
		t.Error("a minter without key signed")
	}
	if _, err := NewMinter(Config{Secret: []byte(testSecret)}).Mint(claims(rooms.RoleClient, AnyRoom), time.Hour); err == nil {
		t.Error("minted a client token for any room")
	}
}

// TestJoinGrant is the media grant of each role, as a table: what
// Grant.May(PermJoin) answers for the claims of a token.
func TestJoinGrant(t *testing.T) {
	tests := []struct {
		role      rooms.Role
		tokenRoom string
		program   string // joined in; the token's is p1
		room      string
		join      bool
	}{
		{rooms.RoleTherapist, "r1", "p1", "r1", true},
		{rooms.RoleTherapist, "r1", "p1", "r2", false},
		{rooms.RoleTherapist, AnyRoom, "p1", "r2", true},
		{rooms.RoleTherapist, AnyRoom, "p2", "r2", false},
		{rooms.RoleClient, "r1", "p1", "r1", true},
		{rooms.RoleClient, "r1", "p2", "r1", false},
		{rooms.RoleClient, "r1", "p1", "r2", false},
		{rooms.RoleFamily, "r1", "p1", "r1", true},
		{rooms.RoleStaff, "r1", "p1", "r1", true},
		{rooms.RoleStaff, AnyRoom, "p1", "r1", false},
		{rooms.RoleClient, AnyRoom, "p1", "r1", false}, // never verifies anyway
		{rooms.RoleTherapist, AnyRoom, "p1", "", false},
		{rooms.RoleTherapist, AnyRoom, "p1", AnyRoom, false},
		{"admin", "r1", "p1", "r1", false},
	}
	for _, tc := range tests {
		c := Claims{Role: tc.role, Room: tc.tokenRoom, Program: "p1"}
		err := c.Grant().May(rooms.PermJoin, rooms.Target{Program: tc.program, Room: tc.room})
		if (err == nil) != tc.join {
			t.Errorf("%s with room %q joining %s/%q: %v, want allowed=%v", tc.role, tc.tokenRoom, tc.program, tc.room, err, tc.join)
		}
	}
}

// TestRotateWhileVerifying: keys can be replaced while other goroutines
// verify (run with -race); a token of a key present in every set never fails.
func TestRotateWhileVerifying(t *testing.T) {
	stable, stablePriv := mustKey(t, AlgEdDSA)
	other, _ := mustKey(t, AlgES256)
	v := mustVerifier(t, Config{Keys: []Key{stable}})
	tok, err := NewMinter(Config{PrivateKey: stablePriv}).Mint(claims(rooms.RoleClient, "r1"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			keys := []Key{stable}
			if i%2 == 0 {
				keys = append(keys, other)
			}
			if err := v.SetKeys(keys); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("token of a key that never left refused during rotation: %v", err)
		}
	}
}
