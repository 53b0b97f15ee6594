package turn

import (
	"strings"
	"testing"
	"time"
)

func TestIssueAndValid(t *testing.T) {
	iss, err := NewIssuer([]string{"turn:127.0.0.1:3478"}, "0123456789abcdef0123")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c := iss.Issue("p1:x", now.Add(time.Hour))
	if !strings.HasSuffix(c.Username, ":p1x") {
		t.Errorf("username %q: the user may not add fields", c.Username)
	}
	for _, tc := range []struct {
		name       string
		user, pass string
		at         time.Time
		want       bool
	}{
		{"fresh", c.Username, c.Password, now, true},
		{"expired", c.Username, c.Password, now.Add(2 * time.Hour), false},
		{"other secret", c.Username, Password([]byte("another secret 0123"), c.Username), now, false},
		{"longer life claimed", strings.Replace(c.Username, c.Username[:3], "999", 1), c.Password, now, false},
		{"no expiry", "p1", Password(iss.Secret, "p1"), now, false},
	} {
		if got := Valid(iss.Secret, tc.user, tc.pass, tc.at); got != tc.want {
			t.Errorf("%s: valid %t, want %t", tc.name, got, tc.want)
		}
	}
	for _, bad := range [][]string{nil, {"http://x"}} {
		if _, err := NewIssuer(bad, "0123456789abcdef0123"); err == nil {
			t.Errorf("urls %q accepted", bad)
		}
	}
	if _, err := NewIssuer([]string{"turn:x"}, "short"); err == nil {
		t.Error("a short secret accepted")
	}
}
