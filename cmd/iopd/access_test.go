package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"iop/rooms"
	"iop/signaling/client"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// api calls the staff API with a bearer token and decodes the JSON answer.
func api(t *testing.T, n *node, method, path, bearer string, body any) (int, map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	if body != nil {
		_ = json.NewEncoder(&buf).Encode(body)
	}
	req, err := http.NewRequest(method, n.url+path, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// joinCode joins with tok over a bare socket and returns "joined",
// "waiting", or the error code the server answered.
func joinCode(t *testing.T, n *node, tok string) (string, *client.Conn) {
	t.Helper()
	c := dial(t, n)
	if err := c.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Token: tok}); err != nil {
		t.Fatal(err)
	}
	m, err := c.Read(time.Now().Add(10 * time.Second))
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	if m.Type == protocol.TypeError {
		return m.Code, c
	}
	return m.Type, c
}

// TestFamilyInvite: the therapist of an open family session gets a
// single-use invite link from the API; it joins once, is refused the second
// time, and an expired one is refused.
func TestFamilyInvite(t *testing.T) {
	n := testNode(t)
	tc := tokenClaims("t1", "Dana", rooms.RoleTherapist, "fam-1")
	tc.Kind = rooms.KindFamily // the therapist opens a family session
	therapist, err := n.minter.Mint(tc, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	client := n.joinToken(t, "c1", "Alex", rooms.RoleClient, "fam-1")
	status, body := api(t, n, "POST", "/v1/rooms/fam-1/invites", therapist, map[string]any{"name": "Alex's mother"})
	if status != http.StatusNotFound {
		t.Fatalf("an invite before the session is open: %d %v, want 404", status, body)
	}
	if code, _ := joinCode(t, n, therapist); code != protocol.TypeJoined {
		t.Fatalf("therapist: %s", code)
	}

	status, body = api(t, n, "POST", "/v1/rooms/fam-1/invites", client, map[string]any{"name": "Alex's mother"})
	if status != http.StatusForbidden || body["code"] != protocol.CodeForbidden {
		t.Fatalf("a client creating an invite: %d %v, want 403 forbidden", status, body)
	}
	status, body = api(t, n, "POST", "/v1/rooms/fam-1/invites", "garbage", map[string]any{"name": "x"})
	if status != http.StatusUnauthorized || body["code"] != protocol.CodeUnauthorized {
		t.Fatalf("a bad bearer token: %d %v, want 401 unauthorized", status, body)
	}
	status, body = api(t, n, "POST", "/v1/rooms/fam-1/invites", therapist, map[string]any{"name": "Alex's mother"})
	if status != http.StatusCreated {
		t.Fatalf("invite: %d %v", status, body)
	}
	link, _ := body["url"].(string)
	invite, ok := strings.CutPrefix(link, n.url+"/join#token=")
	if !ok {
		t.Fatalf("invite url %q is not a join link of this server", link)
	}

	first, _ := joinCode(t, n, invite)
	if first != protocol.TypeWaiting {
		t.Fatalf("first use of the invite: %s, want waiting", first)
	}
	second, _ := joinCode(t, n, invite)
	if second != protocol.CodeUnauthorized {
		t.Fatalf("second use of the invite: %s, want unauthorized", second)
	}

	expired, err := n.minter.Mint(tokenClaims("family-x", "Sam's father", rooms.RoleFamily, "fam-1"), -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := joinCode(t, n, expired); code != protocol.CodeUnauthorized {
		t.Fatalf("expired invite: %s, want unauthorized", code)
	}
}

// TestRemovedCannotRejoin: a removed client is refused with the same token
// and with a fresh one.
func TestRemovedCannotRejoin(t *testing.T) {
	n := testNode(t)
	room := "rm-" + token.RandomID(3) // removals outlive a test run in CI's Redis
	ther := joinPeer(t, n, "therapist", rooms.RoleTherapist, room)
	tok := n.joinToken(t, "sub-alex", "alex", rooms.RoleClient, room)
	c := joinRaw(t, n, "alex", room)
	m := waitEvent(t, ther, 10*time.Second, "alex joined", func(m protocol.ServerMessage) bool {
		return m.Type == protocol.TypeParticipantJoined && m.Participant.Name == "alex"
	})
	if err := ther.Send(protocol.ClientMessage{Type: protocol.TypeRemove, Participant: m.Participant.ID, Reason: "Please step out and call me"}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := c.Read(time.Now().Add(10 * time.Second))
		if err != nil {
			t.Fatalf("waiting for removed: %v", err)
		}
		if m.Type == protocol.TypeRemoved {
			if m.Reason != "Please step out and call me" {
				t.Errorf("removed reason %q", m.Reason)
			}
			break
		}
	}
	if code, _ := joinCode(t, n, tok); code != protocol.CodeRemoved {
		t.Errorf("rejoin with the same token: %s, want removed", code)
	}
	if code, _ := joinCode(t, n, n.joinToken(t, "sub-alex", "alex", rooms.RoleClient, room)); code != protocol.CodeRemoved {
		t.Errorf("rejoin with a fresh token: %s, want removed", code)
	}
	if code, _ := joinCode(t, n, n.joinToken(t, "sub-alex", "alex", rooms.RoleClient, room+"-other")); code != protocol.TypeWaiting {
		t.Errorf("another session: %s, want waiting (removal is per session)", code)
	}
}

// TestBlockedPersonIsDisconnected: a program-wide block ends a live session
// within 5 seconds and refuses new joins until lifted.
func TestBlockedPersonIsDisconnected(t *testing.T) {
	n := testNode(t)
	const room = "blk-1"
	joinPeer(t, n, "therapist", rooms.RoleTherapist, room)
	sub := "sub-" + token.RandomID(4)
	c := dial(t, n)
	if err := c.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Token: n.joinToken(t, sub, "Riley", rooms.RoleClient, room)}); err != nil {
		t.Fatal(err)
	}
	waitType(t, c, protocol.TypeJoined)

	staff := n.joinToken(t, "staff-1", "Case manager", rooms.RoleStaff, token.AnyRoom)
	if status, body := api(t, n, "PUT", "/v1/programs/demo/blocks/"+sub, staff, nil); status != http.StatusNoContent {
		t.Fatalf("block: %d %v", status, body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, err := c.Read(deadline)
		if err != nil {
			t.Fatalf("the blocked client was not told within 5 s: %v", err)
		}
		if m.Type == protocol.TypeRemoved {
			break
		}
	}
	expectClosed(t, c, websocket.CloseNormalClosure)
	if code, _ := joinCode(t, n, n.joinToken(t, sub, "Riley", rooms.RoleClient, room)); code != protocol.CodeForbidden {
		t.Errorf("blocked person joining: %s, want forbidden", code)
	}
	if status, _ := api(t, n, "DELETE", "/v1/programs/demo/blocks/"+sub, staff, nil); status != http.StatusNoContent {
		t.Fatalf("unblock: %d", status)
	}
	if code, _ := joinCode(t, n, n.joinToken(t, sub, "Riley", rooms.RoleClient, room)); code != protocol.TypeWaiting {
		t.Errorf("after unblocking: %s, want waiting", code)
	}
	if status, _ := api(t, n, "PUT", "/v1/programs/elsewhere/blocks/"+sub, staff, nil); status != http.StatusForbidden {
		t.Errorf("blocking in another program: %d, want 403", status)
	}
}

func waitType(t *testing.T, c *client.Conn, typ string) protocol.ServerMessage {
	t.Helper()
	for {
		m, err := c.Read(time.Now().Add(10 * time.Second))
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		if m.Type == typ {
			return m
		}
	}
}

// TestStaffWithoutGrantDoesNotJoinMedia: a staff token for any room is for
// the API; with a token for one session staff join without waiting.
func TestStaffWithoutGrantDoesNotJoinMedia(t *testing.T) {
	n := testNode(t)
	c := dial(t, n)
	_ = c.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Room: "s-1", Token: n.joinToken(t, "st", "Staff", rooms.RoleStaff, token.AnyRoom)})
	expectError(t, c, protocol.CodeForbidden)
	if code, _ := joinCode(t, n, n.joinToken(t, "st", "Staff", rooms.RoleStaff, "s-1")); code != protocol.TypeJoined {
		t.Errorf("staff with a grant for the session: %s, want joined", code)
	}
}

// TestOriginCheck: a browser on another site cannot open the signaling
// socket unless that origin is configured.
func TestOriginCheck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := testNode(t)
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"https://evil.example", false},
		{n.url, true},
		{"", true}, // not a browser
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		c, err := client.Dial(ctx, n.url, h)
		if (err == nil) != tc.ok {
			t.Errorf("origin %q: err %v, want allowed=%v", tc.origin, err, tc.ok)
		}
		if c != nil {
			c.Close()
		}
	}
	m := testNode(t, func(c *config) { c.Origins = "https://clinic.example" })
	h := http.Header{"Origin": {"https://clinic.example"}}
	c, err := client.Dial(ctx, m.url, h)
	if err != nil {
		t.Fatalf("a configured origin is refused: %v", err)
	}
	c.Close()
	if _, err := client.Dial(ctx, m.url, http.Header{"Origin": {"https://evil.example"}}); err == nil {
		t.Error("an unconfigured origin is allowed")
	}
}

// TestEdDSAKeysThroughTheServer: with IOP_JWT_KEYS the server accepts tokens
// signed by the configured key and refuses HS256 ones (algorithm confusion).
func TestEdDSAKeysThroughTheServer(t *testing.T) {
	priv, err := token.GenerateKey(token.AlgEdDSA)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := token.PublicKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := token.MarshalPEM([]token.Key{pub})
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(t.TempDir(), "keys.pem")
	if err := os.WriteFile(keys, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	n := testNode(t, func(c *config) { c.JWTSecret = ""; c.JWTKeys = keys })
	signer := token.NewMinter(token.Config{PrivateKey: priv})
	tok, err := signer.Mint(tokenClaims("t", "Dana", rooms.RoleTherapist, "ed-1"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := joinCode(t, n, tok); code != protocol.TypeJoined {
		t.Errorf("EdDSA token: %s, want joined", code)
	}
	hs := token.NewMinter(token.Config{Secret: []byte("test-secret-test-secret-test-secret-0123")})
	tok, err = hs.Mint(tokenClaims("t", "Dana", rooms.RoleTherapist, "ed-1"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := joinCode(t, n, tok); code != protocol.CodeUnauthorized {
		t.Errorf("HS256 token against EdDSA keys: %s, want unauthorized", code)
	}
}

// TestCohortGroup: a group restricted to a cohort refuses a client outside
// it with not_enrolled and takes those enrolled.
func TestCohortGroup(t *testing.T) {
	n := testNode(t)
	mint := func(c token.Claims) string {
		tok, err := n.minter.Mint(c, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	ther := tokenClaims("t", "Dana", rooms.RoleTherapist, "women-1")
	ther.Cohort = "women"
	if code, _ := joinCode(t, n, mint(ther)); code != protocol.TypeJoined {
		t.Fatalf("therapist: %s", code)
	}
	in := tokenClaims("c1", "Maria", rooms.RoleClient, "women-1")
	in.Cohorts = []string{"veterans", "women"}
	if code, _ := joinCode(t, n, mint(in)); code != protocol.TypeWaiting {
		t.Errorf("enrolled client: %s, want waiting", code)
	}
	out := tokenClaims("c2", "Sam", rooms.RoleClient, "women-1")
	out.Cohorts = []string{"veterans"}
	code, c := joinCode(t, n, mint(out))
	if code != protocol.CodeNotEnrolled {
		t.Errorf("client outside the cohort: %s, want not_enrolled", code)
	}
	expectClosed(t, c, websocket.ClosePolicyViolation)
}

// TestInviteBeforeTherapistAndAfterDrop: a family member who opens the link
// before the therapist waits (without a seat until the kind is settled),
// the therapist's family session admits them, and after a dropped
// connection the same link brings them back only with the resume secret of
// their joined (a copied link does not); a refused join leaves no empty
// room behind.
func TestInviteBeforeTherapistAndAfterDrop(t *testing.T) {
	n := testNode(t)
	mint := func(c token.Claims) string {
		tok, err := n.minter.Mint(c, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if code, c := joinCode(t, n, mint(tokenClaims("c9", "Alex", rooms.RoleClient, "other-room"))); code != protocol.TypeWaiting {
		t.Fatalf("client: %s", code)
	} else {
		c.Close()
	}
	invite := mint(tokenClaims("family-1", "Alex's mother", rooms.RoleFamily, "fam-2"))
	code, fam := joinCode(t, n, invite)
	if code != protocol.TypeWaiting {
		t.Fatalf("family member before the therapist: %s, want waiting", code)
	}
	ther := tokenClaims("t", "Dana", rooms.RoleTherapist, "fam-2")
	ther.Kind = rooms.KindFamily
	tp, err := client.Join(context.Background(), n.url, mint(ther), client.Options{AutoAdmit: true, NoMedia: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tp.Close)
	joined := waitType(t, fam, protocol.TypeJoined)
	if k := n.rooms.Get(demoRef("fam-2")).Kind(); k != rooms.KindFamily {
		t.Errorf("the room's kind is %s after the therapist opened it", k)
	}
	if joined.Resume == "" {
		t.Fatal("joined carries no resume secret")
	}
	fam.Close() // the connection drops
	eventually(t, 10*time.Second, "the drop is noticed", func() (bool, string) {
		return len(n.rooms.Get(demoRef("fam-2")).Participants()) == 1, "still there"
	})
	if code, _ := joinCode(t, n, invite); code != protocol.CodeUnauthorized {
		t.Errorf("the same link without the resume secret (copied) after a drop: %s, want unauthorized", code)
	}
	back := dial(t, n)
	if err := back.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Token: invite, Resume: joined.Resume}); err != nil {
		t.Fatal(err)
	}
	again := waitType(t, back, protocol.TypeJoined)
	if again.Resume == "" || again.Resume == joined.Resume {
		t.Errorf("the resumed joined carries resume %q, want a new secret", again.Resume)
	}

	before := n.rooms.Len()
	never := "never-opened-" + token.RandomID(3)
	revoked := tokenClaims("c10", "Sam", rooms.RoleClient, never)
	if err := n.store.RevokeFromRoom(context.Background(), demoRef(never).String(), "c10", time.Minute); err != nil {
		t.Fatal(err)
	}
	if code, _ := joinCode(t, n, mint(revoked)); code != protocol.CodeRemoved {
		t.Fatalf("revoked: %s", code)
	}
	full := tokenClaims("f2", "Cousin", rooms.RoleFamily, "group-x")
	ot := tokenClaims("t2", "Dana", rooms.RoleTherapist, "group-x")
	if code, _ := joinCode(t, n, mint(ot)); code != protocol.TypeJoined {
		t.Fatal(code)
	}
	if code, _ := joinCode(t, n, mint(full)); code != protocol.CodeRoomFull {
		t.Errorf("family in a group: %s, want room_full", code)
	}
	if got := n.rooms.Len(); got != before+1 {
		t.Errorf("%d rooms open after refused joins, want %d (only group-x)", got, before+1)
	}
}
