package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"iop/rooms"
	"iop/signaling/token"
)

const secret = "iopctl-test-secret-iopctl-test-secret-0123"

// env returns a getenv over vars.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// iopctl runs a command in-process and returns its stdout.
func iopctl(t *testing.T, vars map[string]string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(args, env(vars), &out)
	return out.String(), err
}

func mustRun(t *testing.T, vars map[string]string, args ...string) string {
	t.Helper()
	out, err := iopctl(t, vars, args...)
	if err != nil {
		t.Fatalf("iopctl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// TestTokenVerifies: a token minted by iopctl is accepted by a Verifier
// built from the configuration iopd would have, for each kind of key, with
// the claims asked for.
func TestTokenVerifies(t *testing.T) {
	dir := t.TempDir()
	edPriv, edPub, edJWKS := filepath.Join(dir, "ed.pem"), filepath.Join(dir, "ed.pub.pem"), filepath.Join(dir, "keys.json")
	esPriv := filepath.Join(dir, "es.pem")
	mustRun(t, nil, "keygen", "-alg", "EdDSA", "-out", edPriv, "-pub", edPub, "-jwks", edJWKS)
	esPub := mustRun(t, nil, "keygen", "-alg", "ES256", "-out", esPriv, "-jwks", edJWKS)
	esPubPath := filepath.Join(dir, "es.pub.pem")
	if err := os.WriteFile(esPubPath, []byte(esPub), 0o644); err != nil {
		t.Fatal(err)
	}

	hsEnv := map[string]string{"IOP_JWT_SECRET": secret, "IOP_JWT_AUDIENCE": "clinic", "IOP_JWT_ISSUER": "ehr"}
	hsCfg := token.Config{Secret: []byte(secret), Audience: "clinic", Issuer: "ehr", Leeway: token.DefaultLeeway}
	client := []string{"token", "-sub", "c-1042", "-name", "Alex", "-role", "client", "-room", "tue-evening", "-program", "evening"}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		verify  token.Config
		link    string
		kind    rooms.Kind
		ttl     time.Duration
		wantSub string
	}{
		{"HS256 from IOP_JWT_SECRET", hsEnv, client, hsCfg, "", "", time.Hour, "c-1042"},
		{"EdDSA with -key, PEM key file", nil, append(client, "-key", edPriv), token.Config{KeysFile: edPub}, "", "", time.Hour, "c-1042"},
		{"EdDSA with -key, JWK set", map[string]string{"IOP_JWT_SECRET": secret}, append(client, "-key", edPriv), token.Config{KeysFile: edJWKS}, "", "", time.Hour, "c-1042"},
		{"ES256 from IOP_JWT_PRIVATE_KEY, JWK set", map[string]string{"IOP_JWT_PRIVATE_KEY": esPriv}, client, token.Config{KeysFile: edJWKS}, "", "", time.Hour, "c-1042"},
		{"ES256, printed PEM", map[string]string{"IOP_JWT_PRIVATE_KEY": esPriv}, client, token.Config{KeysFile: esPubPath}, "", "", time.Hour, "c-1042"},
		{"therapist link for any room", hsEnv,
			[]string{"token", "-sub", "t-7", "-name", "Sam", "-role", "therapist", "-room", "*", "-program", "evening", "-kind", "individual", "-ttl", "12h", "-url", "https://iop.example.org/"},
			hsCfg, "https://iop.example.org/join#token=", rooms.KindIndividual, 12 * time.Hour, "t-7"},
		{"audience and issuer flags", nil, append(client, "-key", edPriv, "-audience", "other", "-issuer", "sor"), token.Config{KeysFile: edJWKS, Audience: "other", Issuer: "sor"}, "", "", time.Hour, "c-1042"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := mustRun(t, tc.env, tc.args...)
			if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
				t.Fatalf("output is not one line: %q", out)
			}
			tok, ok := strings.CutPrefix(strings.TrimSpace(out), tc.link)
			if !ok {
				t.Fatalf("output %q does not start with %q", out, tc.link)
			}
			v, err := token.NewVerifier(tc.verify)
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("iopctl's token refused by iopd's verifier: %v", err)
			}
			if c.Subject != tc.wantSub || c.Kind != tc.kind {
				t.Errorf("claims %+v", c)
			}
			if life := c.ExpiresAt.Sub(c.IssuedAt.Time); life != tc.ttl {
				t.Errorf("token lives %v, want %v", life, tc.ttl)
			}
		})
	}
}

// TestTokenErrors: iopctl refuses to mint what iopd would refuse, and says
// what is wrong.
func TestTokenErrors(t *testing.T) {
	ok := map[string]string{"IOP_JWT_SECRET": secret}
	base := []string{"token", "-sub", "c-1", "-name", "Alex", "-program", "evening"}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no command", ok, nil, "no command"},
		{"unknown command", ok, []string{"mint"}, "unknown command"},
		{"unknown flag", ok, []string{"token", "-bogus"}, "-bogus"},
		{"leftover arguments", ok, append(base, "-role", "client", "-room", "r", "extra"), "unexpected arguments"},
		{"missing flags", ok, []string{"token", "-sub", "c-1"}, "-name, -role, -room, -program required"},
		{"unknown role", ok, append(base, "-role", "admin", "-room", "r"), "role"},
		{"client for any room", ok, append(base, "-role", "client", "-room", "*"), "any room"},
		{"kind on a client token", ok, append(base, "-role", "client", "-room", "r", "-kind", "group"), "kind"},
		{"unknown kind", ok, append(base, "-role", "therapist", "-room", "r", "-kind", "party"), "kind"},
		{"zero ttl", ok, append(base, "-role", "client", "-room", "r", "-ttl", "0s"), "positive"},
		{"bad url", ok, append(base, "-role", "client", "-room", "r", "-url", "iop.example.org"), "base URL"},
		{"no key", nil, append(base, "-role", "client", "-room", "r"), "no signing key"},
		{"short secret", map[string]string{"IOP_JWT_SECRET": "short"}, append(base, "-role", "client", "-room", "r"), "at least 32 bytes"},
		{"missing key file", nil, append(base, "-role", "client", "-room", "r", "-key", filepath.Join(t.TempDir(), "nope.pem")), "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := iopctl(t, tc.env, tc.args...)
			if err == nil {
				t.Fatalf("succeeded, printing %q", out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(out, "eyJ") {
				t.Errorf("printed a token although it failed: %q", out)
			}
		})
	}
}

// TestHelp: -h prints the usage of a command on stdout.
func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"token", "-h"}, "-sub"},
		{[]string{"keygen", "-h"}, "-alg"},
		{[]string{"help"}, "iopctl keygen"},
	} {
		out, err := iopctl(t, nil, tc.args...)
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%v: err %v, want flag.ErrHelp", tc.args, err)
		}
		if !strings.Contains(out, tc.want) {
			t.Errorf("%v printed %q, want it to mention %s", tc.args, out, tc.want)
		}
	}
}

// TestKeygen: keygen writes a private key only its owner can read, never
// replaces one, and grows the public key files into key sets iopd loads,
// ready for a rotation.
func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	pubPEM, jwks := filepath.Join(dir, "keys.pem"), filepath.Join(dir, "keys.json")
	var kids []string
	for i, alg := range []string{"EdDSA", "ES256", "EdDSA"} {
		priv := filepath.Join(dir, "k"+string(rune('0'+i))+".pem")
		out := mustRun(t, nil, "keygen", "-alg", alg, "-out", priv, "-pub", pubPEM, "-jwks", jwks)
		kid, ok := strings.CutPrefix(strings.TrimSpace(out), "kid: ")
		if !ok {
			t.Fatalf("keygen printed %q", out)
		}
		kids = append(kids, kid)
		st, err := os.Stat(priv)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("private key mode %v, want 0600", st.Mode().Perm())
		}
		if _, err := token.LoadPrivateKey(priv); err != nil {
			t.Errorf("written private key does not load: %v", err)
		}
	}
	for _, path := range []string{pubPEM, jwks} {
		keys, err := token.LoadKeys(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var got []string
		for _, k := range keys {
			got = append(got, k.ID)
		}
		if strings.Join(got, ",") != strings.Join(kids, ",") {
			t.Errorf("%s holds kids %v, want %v", filepath.Base(path), got, kids)
		}
	}

	// Printed public key, when no -pub is given.
	out := mustRun(t, nil, "keygen", "-alg", "ES256", "-out", filepath.Join(dir, "printed.pem"))
	if keys, err := token.ParseKeys([]byte(out)); err != nil || len(keys) != 1 || keys[0].Alg != token.AlgES256 {
		t.Errorf("printed public key %q loads as %v, %v", out, keys, err)
	}

	errs := []struct {
		name string
		args []string
		want string
	}{
		{"existing private key", []string{"keygen", "-out", filepath.Join(dir, "k0.pem")}, "exists"},
		{"no -out", []string{"keygen"}, "-out required"},
		{"RS256", []string{"keygen", "-alg", "RS256", "-out", filepath.Join(dir, "rsa.pem")}, "RS256"},
		{"JWK set file that is not one", []string{"keygen", "-out", filepath.Join(dir, "x.pem"), "-jwks", pubPEM}, "not a JWK set"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := iopctl(t, nil, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want one saying %q", err, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "x.pem")); err == nil {
		t.Error("a failed keygen left a private key behind")
	}
}
