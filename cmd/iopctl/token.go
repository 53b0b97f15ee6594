package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"iop/rooms"
	"iop/signaling/token"
)

// runToken mints one token from the key configuration of iopd.
func runToken(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("token", "-sub ID -name NAME -role ROLE -room ROOM -program P [-kind KIND] [-cohort C | -cohorts C1,C2] [-ttl 1h] [-url BASE] [-key private.pem]", stdout)
	var (
		sub      = cmd.String("sub", "", "stable person id (required)")
		name     = cmd.String("name", "", "display name shown in the room (required)")
		role     = cmd.String("role", "", "therapist, client, family or staff (required)")
		room     = cmd.String("room", "", `room (session) id the token may join, or "*" for therapists and staff (required)`)
		kind     = cmd.String("kind", "", "therapist tokens only: kind of the ad-hoc room it opens (group, individual, family, complementary, support)")
		program  = cmd.String("program", "", "program id: everything the token allows is in this program (required)")
		cohort   = cmd.String("cohort", "", "therapist tokens only: restrict the room it opens to clients of this cohort")
		cohorts  = cmd.String("cohorts", "", "client tokens: the cohorts the client is enrolled in, comma-separated")
		ttl      = cmd.Duration("ttl", time.Hour, "lifetime of the token")
		base     = cmd.String("url", "", "print a join link BASE/join#token=... instead of the bare token")
		keyPath  = cmd.String("key", getenv("IOP_JWT_PRIVATE_KEY"), "EdDSA or ES256 private key PEM to sign with instead of IOP_JWT_SECRET [$IOP_JWT_PRIVATE_KEY]")
		audience = cmd.String("audience", cmp.Or(getenv("IOP_JWT_AUDIENCE"), token.DefaultAudience), "token audience [$IOP_JWT_AUDIENCE]")
		issuer   = cmd.String("issuer", getenv("IOP_JWT_ISSUER"), "token issuer [$IOP_JWT_ISSUER]")
	)
	if err := cmd.parse(args); err != nil {
		return err
	}
	var missing []string
	for _, f := range []struct{ name, value string }{{"-sub", *sub}, {"-name", *name}, {"-role", *role}, {"-room", *room}, {"-program", *program}} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("token: %s required", strings.Join(missing, ", "))
	}
	if r := rooms.Role(*role); !r.Valid() {
		return fmt.Errorf("token: role %q: want therapist, client, family or staff", *role)
	}
	if *ttl <= 0 {
		return fmt.Errorf("token: -ttl %v: must be positive", *ttl)
	}
	link := ""
	if *base != "" {
		u, err := url.Parse(*base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" || u.RawQuery != "" {
			return fmt.Errorf("token: -url %q: want a base URL like https://iop.example.org", *base)
		}
		link = strings.TrimRight(*base, "/") + "/join#token="
	}

	cfg, err := signingConfig(*keyPath, getenv("IOP_JWT_SECRET"), *audience, *issuer)
	if err != nil {
		return err
	}
	c := token.Claims{Name: *name, Role: rooms.Role(*role), Room: *room, Kind: rooms.Kind(*kind), Program: *program, Cohort: *cohort}
	for _, co := range strings.Split(*cohorts, ",") {
		if co = strings.TrimSpace(co); co != "" {
			c.Cohorts = append(c.Cohorts, co)
		}
	}
	c.Subject = *sub
	tok, err := token.NewMinter(cfg).Mint(c, *ttl)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	_, err = fmt.Fprintln(stdout, link+tok)
	return err
}

// signingConfig is the minting side of iopd's key configuration: a private
// key file, or else the HS256 secret.
func signingConfig(keyPath, secret, audience, issuer string) (token.Config, error) {
	cfg := token.Config{Audience: audience, Issuer: issuer}
	switch {
	case keyPath != "":
		priv, err := token.LoadPrivateKey(keyPath)
		if err != nil {
			return cfg, fmt.Errorf("token: %w", err)
		}
		cfg.PrivateKey = priv
	case secret != "":
		if len(secret) < token.MinSecretLen {
			return cfg, fmt.Errorf("token: IOP_JWT_SECRET must be at least %d bytes, as iopd requires", token.MinSecretLen)
		}
		cfg.Secret = []byte(secret)
	default:
		return cfg, errors.New("token: no signing key: set IOP_JWT_SECRET (HS256) or IOP_JWT_PRIVATE_KEY / -key (EdDSA, ES256)")
	}
	return cfg, nil
}
