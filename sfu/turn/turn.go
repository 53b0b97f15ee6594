// Package turn is TURN for iopd: short-lived credentials by the TURN REST
// scheme that coturn's use-auth-secret checks, and an embedded TURN server
// (pion/turn) for a one-binary install that relays only to iopd's own media
// ports.
//
// A credential is a username "<expiry unix time>:<user>" and the password
// base64(HMAC-SHA1(secret, username)). The TURN server recomputes the
// password from its copy of the secret and refuses an expired username, so
// iopd and the TURN server share nothing but the secret.
package turn

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is what the TURN REST scheme and coturn use
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Credential is one TURN username and password.
type Credential struct {
	Username string
	Password string
	Expires  time.Time
}

// Issuer mints credentials for the TURN servers at URLs.
type Issuer struct {
	// URLs are the turn: and turns: URLs handed to clients (stun: URLs may
	// be listed too; they need no credential).
	URLs []string
	// Secret is the shared secret (coturn's static-auth-secret).
	Secret []byte
}

// NewIssuer returns an issuer, or an error when the settings cannot work.
func NewIssuer(urls []string, secret string) (*Issuer, error) {
	if len(urls) == 0 {
		return nil, errors.New("TURN: no URLs")
	}
	if len(secret) < 16 {
		return nil, errors.New("TURN: the shared secret must be at least 16 bytes")
	}
	for _, u := range urls {
		if !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") && !strings.HasPrefix(u, "stun:") {
			return nil, errors.New("TURN: " + strconv.Quote(u) + " is not a turn:, turns: or stun: URL")
		}
	}
	return &Issuer{URLs: urls, Secret: []byte(secret)}, nil
}

// Issue mints a credential for user that expires at expires. user must not
// contain ':'; it should not identify a person (TURN servers log it).
func (i *Issuer) Issue(user string, expires time.Time) Credential {
	username := strconv.FormatInt(expires.Unix(), 10) + ":" + strings.ReplaceAll(user, ":", "")
	return Credential{Username: username, Password: Password(i.Secret, username), Expires: time.Unix(expires.Unix(), 0).UTC()}
}

// Password is the TURN REST password of username for secret.
func Password(secret []byte, username string) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Valid reports whether a username and password were minted with secret and
// have not expired at now.
func Valid(secret []byte, username, password string, now time.Time) bool {
	ts, _, ok := strings.Cut(username, ":")
	if !ok {
		return false
	}
	exp, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || exp < now.Unix() {
		return false
	}
	return hmac.Equal([]byte(Password(secret, username)), []byte(password))
}
