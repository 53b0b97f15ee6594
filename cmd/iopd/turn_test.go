package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST scheme's HMAC
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"iop/rooms"
	"iop/rooms/schedule"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

const testTURNSecret = "turn-secret-turn-secret-0123456789"

// withTURN configures the node to hand out credentials for a TURN server
// at urls with testTURNSecret.
func withTURN(urls string) func(*config) {
	return func(c *config) {
		c.TURNURLs = urls
		c.TURNSecret = testTURNSecret
	}
}

// joinedMessage joins with tok over a bare connection and returns the
// joined message (the token must be a therapist's: nobody admits).
func joinedMessage(t *testing.T, n *node, tok string) protocol.ServerMessage {
	t.Helper()
	c := dial(t, n)
	if err := c.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Token: tok, ID: "join"}); err != nil {
		t.Fatal(err)
	}
	m, err := c.Read(time.Now().Add(10 * time.Second))
	if err != nil || m.Type != protocol.TypeJoined {
		t.Fatalf("join: %+v %v", m, err)
	}
	return m
}

// turnCredential checks that joined hands out one TURN server entry with
// the configured URLs and a credential that coturn (use-auth-secret) would
// accept, and returns its username and expiry.
func turnCredential(t *testing.T, m protocol.ServerMessage, urls []string) (string, time.Time) {
	t.Helper()
	if len(m.ICEServers) != 1 {
		t.Fatalf("ice_servers %+v, want one TURN entry", m.ICEServers)
	}
	s := m.ICEServers[0]
	if strings.Join(s.URLs, ",") != strings.Join(urls, ",") {
		t.Errorf("TURN urls %q, want %q", s.URLs, urls)
	}
	mac := hmac.New(sha1.New, []byte(testTURNSecret))
	mac.Write([]byte(s.Username))
	if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); s.Credential != want {
		t.Errorf("credential of %q is not base64(HMAC-SHA1(secret, username))", s.Username)
	}
	ts, user, ok := strings.Cut(s.Username, ":")
	exp, err := strconv.ParseInt(ts, 10, 64)
	if !ok || err != nil || user == "" {
		t.Fatalf("username %q is not <expiry>:<user>", s.Username)
	}
	return user, time.Unix(exp, 0)
}

// TestTURNCredentialsInJoined: with a TURN server configured, every joined
// message carries TURN credentials that the server's secret validates, for
// a user that is the participant (never the person's name or id), expiring
// with the session: an ad-hoc room's after IOP_TURN_TTL, a scheduled
// session's at its end plus the overrun. A reconnect gets new ones.
func TestTURNCredentialsInJoined(t *testing.T) {
	urls := []string{"turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:443?transport=tcp"}
	n := testNode(t, withTURN(strings.Join(urls, ",")), func(c *config) { c.TURNTTL = 2 * time.Hour })
	room := "turn-" + token.RandomID(3)

	before := time.Now()
	first := joinedMessage(t, n, n.joinToken(t, "therapist-1", "Dana", rooms.RoleTherapist, room))
	user1, exp1 := turnCredential(t, first, urls)
	if user1 != first.You.ID {
		t.Errorf("TURN user %q, want the participant id %q", user1, first.You.ID)
	}
	if exp1.Before(before.Add(2*time.Hour-time.Second)) || exp1.After(time.Now().Add(2*time.Hour)) {
		t.Errorf("ad-hoc room: credentials expire %v from now, want IOP_TURN_TTL (2h)", time.Until(exp1).Round(time.Second))
	}
	second := joinedMessage(t, n, n.joinToken(t, "therapist-2", "Lee", rooms.RoleTherapist, room))
	user2, _ := turnCredential(t, second, urls)
	again := joinedMessage(t, n, n.joinToken(t, "therapist-1", "Dana", rooms.RoleTherapist, room))
	user3, _ := turnCredential(t, again, urls)
	if user1 == user2 || user1 == user3 || user2 == user3 {
		t.Errorf("TURN users %q, %q and (Dana again) %q: want a different one per participant and connection", user1, user2, user3)
	}
	for _, u := range []string{user1, user2, user3} {
		if strings.Contains(u, "therapist") || strings.Contains(u, "Dana") {
			t.Errorf("TURN user %q names the person", u)
		}
	}

	// A scheduled session: the credentials end with it (plus the overrun),
	// not IOP_TURN_TTL later.
	ctx := context.Background()
	program := "turnprog-" + token.RandomID(3)
	f, err := schedule.LoadYAML(strings.NewReader("program:\n  id: " + program + "\n  name: T\n  time_zone: UTC\n  tracks:\n    - {id: day, name: Day}\nenrollments:\n  - {sub: c1, track: day, start: 2026-01-05}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.schedule.Seed(ctx, f); err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC().Truncate(time.Minute).Add(2 * time.Minute)
	b, err := n.schedule.Book(ctx, program, schedule.Booking{Kind: rooms.KindIndividual, Start: start,
		Length: schedule.Duration(20 * time.Minute), Client: "c1", Therapist: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	c := tokenClaims("t1", "Dana", rooms.RoleTherapist, b.ID)
	c.Program = program
	tok, err := n.minter.Mint(c, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, exp := turnCredential(t, joinedMessage(t, n, tok), urls)
	end := start.Add(20 * time.Minute)
	if want := end.Add(30 * time.Minute); exp.Sub(want).Abs() > 2*time.Second {
		t.Errorf("scheduled session ending %v: credentials expire %v, want its end plus 30 minutes", end, exp)
	}
}

// TestNoTURNWithoutConfig: without a TURN server, ice_servers stays empty.
func TestNoTURNWithoutConfig(t *testing.T) {
	n := testNode(t)
	m := joinedMessage(t, n, n.joinToken(t, "therapist-1", "Dana", rooms.RoleTherapist, "no-turn"))
	if len(m.ICEServers) != 0 {
		t.Errorf("ice_servers %+v without TURN configured", m.ICEServers)
	}
}

// TestTherapistSeesTransport: once a client's media connects, the others
// (the therapist's console among them) learn how it travels.
func TestTherapistSeesTransport(t *testing.T) {
	n := testNode(t)
	a := joinPeer(t, n, "therapist", rooms.RoleTherapist, "transport")
	b := joinPeer(t, n, "alex", rooms.RoleClient, "transport")
	m := waitEvent(t, a, 20*time.Second, "alex's transport", func(m protocol.ServerMessage) bool {
		return m.Type == protocol.TypeParticipantUpdated && m.Participant != nil && m.Participant.ID == b.ID() && m.Participant.Transport != ""
	})
	if m.Participant.Transport != "udp" {
		t.Errorf("alex's transport %q, want udp (the Go client uses UDP only)", m.Participant.Transport)
	}
}
