package main

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"iop/rooms"
	"iop/signaling/token"
)

// nobody is a room listener that hears nothing.
type nobody struct{}

func (nobody) RoomEvent(rooms.Event) {}

// TestLinkCheck: GET /v1/link tells the join page, before the camera
// turns on, whether its link works and if not why, in one word each; a
// token that does not verify is only ever "invalid".
func TestLinkCheck(t *testing.T) {
	n := testNode(t)
	ctx := context.Background()
	mint := func(c token.Claims, ttl time.Duration) string {
		t.Helper()
		tok, err := n.minter.Mint(c, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// A link for a session tomorrow: Mint sets nbf to now, so sign it here.
	later := tokenClaims("c2", "Alex", rooms.RoleClient, "link-1")
	later.Audience = jwt.ClaimStrings{token.DefaultAudience}
	later.IssuedAt = jwt.NewNumericDate(time.Now())
	later.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour))
	later.ExpiresAt = jwt.NewNumericDate(time.Now().Add(2 * time.Hour))
	notYet, err := jwt.NewWithClaims(jwt.SigningMethodHS256, later).SignedString([]byte("test-secret-test-secret-test-secret-0123"))
	if err != nil {
		t.Fatal(err)
	}
	otherKey := token.NewMinter(token.Config{Secret: []byte("another-secret-another-secret-0123456789")})
	wrongKey, err := otherKey.Mint(tokenClaims("c1", "Alex", rooms.RoleClient, "link-1"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expiredWrongKey, err := otherKey.Mint(tokenClaims("c1", "Alex", rooms.RoleClient, "link-1"), -time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	used := mint(tokenClaims("f1", "Sam", rooms.RoleFamily, "link-fam"), time.Hour)
	claims, err := n.verifier.Verify(used)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.store.ConsumeJTI(ctx, demoProgram, claims.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := n.store.RevokeFromRoom(ctx, demoRef("link-removed").String(), "c3", time.Minute); err != nil {
		t.Fatal(err)
	}
	r := n.rooms.Open(demoRef("link-ended"), rooms.KindGroup, "", false)
	if _, err := r.Join(rooms.Participant{ID: "t1", Sub: "t1", Role: rooms.RoleTherapist, Program: demoProgram}, nobody{}, rooms.JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.End("t1"); err != nil {
		t.Fatal(err)
	}
	r.Leave("t1", rooms.ReasonEnded)

	cases := []struct {
		name, bearer, want string
	}{
		{"a good link", n.joinToken(t, "c1", "Alex", rooms.RoleClient, "link-1"), "valid"},
		{"no token", "", "invalid"},
		{"garbage", "not.a-valid.jwt", "invalid"},
		{"signed with another key", wrongKey, "invalid"},
		{"expired and signed with another key", expiredWrongKey, "invalid"},
		{"expired", mint(tokenClaims("c1", "Alex", rooms.RoleClient, "link-1"), -time.Hour), "expired"},
		{"not valid yet", notYet, "not_yet_valid"},
		{"an invitation already used", used, "used"},
		{"removed from the session", n.joinToken(t, "c3", "Alex", rooms.RoleClient, "link-removed"), "removed"},
		{"the session ended", n.joinToken(t, "c4", "Alex", rooms.RoleClient, "link-ended"), "ended"},
		{"a therapist of the ended session", n.joinToken(t, "t1", "Dana", rooms.RoleTherapist, "link-ended"), "valid"},
	}
	for _, c := range cases {
		status, body := api(t, n, "GET", "/v1/link", c.bearer, nil)
		if status != 200 || body["status"] != c.want {
			t.Errorf("%s: %d %v, want 200 status %q", c.name, status, body, c.want)
		}
	}
}
