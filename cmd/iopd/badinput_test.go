package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"iop/rooms"
	"iop/signaling/client"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// expectError reads from c until an error message arrives and checks its code.
func expectError(t *testing.T, c *client.Conn, code string) protocol.ServerMessage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := c.Read(deadline)
		if err != nil {
			t.Fatalf("waiting for error %s: %v", code, err)
		}
		if m.Type != protocol.TypeError {
			continue
		}
		if m.Code != code {
			t.Fatalf("error code %q (%s), want %q", m.Code, m.Message, code)
		}
		if m.Message == "" {
			t.Errorf("error %s has no message", code)
		}
		return m
	}
}

// expectClosed checks that the server closes c with the websocket close code.
func expectClosed(t *testing.T, c *client.Conn, closeCode int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := c.Read(deadline)
		if err == nil {
			t.Logf("message before close: %s", m.Type)
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("want close %d, got %v", closeCode, err)
		}
		if ce.Code != closeCode {
			t.Fatalf("close code %d, want %d", ce.Code, closeCode)
		}
		return
	}
}

// expectOpen checks the connection still answers a ping.
func expectOpen(t *testing.T, c *client.Conn) {
	t.Helper()
	if err := c.Send(map[string]any{"type": "ping", "t": 42, "id": "still-there"}); err != nil {
		t.Fatalf("send ping: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := c.Read(deadline)
		if err != nil {
			t.Fatalf("connection closed after a recoverable error: %v", err)
		}
		if m.Type == protocol.TypePong {
			if m.Re != "still-there" || string(m.T) != "42" {
				t.Errorf("pong re=%q t=%s, want re still-there t 42", m.Re, m.T)
			}
			return
		}
	}
}

func dial(t *testing.T, n *node) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, n.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// joinRaw joins a client over a bare connection without media and returns
// once a therapist in the room has admitted it.
func joinRaw(t *testing.T, n *node, name, room string) *client.Conn {
	t.Helper()
	c := dial(t, n)
	if err := c.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Token: n.joinToken(t, "sub-"+name, name, rooms.RoleClient, room)}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := c.Read(time.Now().Add(10 * time.Second))
		if err != nil {
			t.Fatalf("join: %v", err)
		}
		if m.Type == protocol.TypeJoined {
			return c
		}
		if m.Type != protocol.TypeWaiting {
			t.Fatalf("join: got %+v", m)
		}
	}
}

func signed(t *testing.T, method jwt.SigningMethod, key any, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBadInput sends what a broken or hostile client might, and checks each
// gets its error code, the right sockets close, and a call in progress on the
// same server neither notices nor stops.
func TestBadInput(t *testing.T) {
	n := testNode(t)
	const room = "bad-input"
	a := joinPeer(t, n, "therapist", rooms.RoleTherapist, room)
	b := joinPeer(t, n, "alex", rooms.RoleClient, room)
	eventually(t, 20*time.Second, "the call is up", func() (bool, string) { return receivesFrom(a, 20, b) })

	secret := []byte("test-secret-test-secret-test-secret-0123")
	claims := func(exp time.Time) token.Claims {
		c := tokenClaims("sub-x", "X", rooms.RoleClient, room)
		c.ExpiresAt = jwt.NewNumericDate(exp)
		c.Audience = jwt.ClaimStrings{"iop"}
		return c
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)

	type step struct {
		name  string
		send  func(c *client.Conn) error
		code  string
		close int // websocket close code, 0: stays open
	}
	text := func(s string) func(*client.Conn) error {
		return func(c *client.Conn) error { return c.SendRaw(websocket.TextMessage, []byte(s)) }
	}
	joinWith := func(tok string) func(*client.Conn) error {
		return func(c *client.Conn) error {
			return c.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Token: tok})
		}
	}
	preJoin := []step{
		{"not JSON", text("hello?"), protocol.CodeBadMessage, websocket.ClosePolicyViolation},
		{"JSON without type", text(`{"token":"x"}`), protocol.CodeBadMessage, websocket.ClosePolicyViolation},
		{"message before join", text(`{"type":"ping","t":1}`), protocol.CodeNotJoined, websocket.ClosePolicyViolation},
		{"frame over 256 KiB", text(`{"type":"join","token":"` + strings.Repeat("a", protocol.MaxFrame) + `"}`), protocol.CodeTooLarge, websocket.CloseMessageTooBig},
		{"no token", joinWith(""), protocol.CodeUnauthorized, websocket.ClosePolicyViolation},
		{"garbage token", joinWith("not.a.jwt"), protocol.CodeUnauthorized, websocket.ClosePolicyViolation},
		{"expired token", joinWith(signed(t, jwt.SigningMethodHS256, secret, claims(time.Now().Add(-time.Hour)))), protocol.CodeUnauthorized, websocket.ClosePolicyViolation},
		{"unsigned token (alg none)", joinWith(signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(time.Now().Add(time.Hour)))), protocol.CodeUnauthorized, websocket.ClosePolicyViolation},
		{"token signed with another key", joinWith(signed(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-0123456"), claims(time.Now().Add(time.Hour)))), protocol.CodeUnauthorized, websocket.ClosePolicyViolation},
		{"token signed with another algorithm (HS512)", joinWith(signed(t, jwt.SigningMethodHS512, secret, claims(time.Now().Add(time.Hour)))), protocol.CodeUnauthorized, websocket.ClosePolicyViolation},
		{"token signed with another algorithm (EdDSA)", joinWith(signed(t, jwt.SigningMethodEdDSA, edKey, claims(time.Now().Add(time.Hour)))), protocol.CodeUnauthorized, websocket.ClosePolicyViolation},
		{"token without exp", joinWith(signed(t, jwt.SigningMethodHS256, secret, func() token.Claims { c := claims(time.Now()); c.ExpiresAt = nil; return c }())), protocol.CodeUnauthorized, websocket.ClosePolicyViolation},
		{"wrong protocol version", func(c *client.Conn) error {
			return c.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 2, Token: n.joinToken(t, "s", "S", rooms.RoleClient, room)})
		}, protocol.CodeBadMessage, websocket.ClosePolicyViolation},
		{"join for another room", func(c *client.Conn) error {
			return c.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Room: "elsewhere", Token: n.joinToken(t, "s", "S", rooms.RoleClient, room)})
		}, protocol.CodeForbidden, websocket.ClosePolicyViolation},
		{"any-room token without a room", func(c *client.Conn) error {
			return c.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Token: n.joinToken(t, "s", "S", rooms.RoleTherapist, token.AnyRoom)})
		}, protocol.CodeBadMessage, websocket.ClosePolicyViolation},
	}
	for _, s := range preJoin {
		t.Run(s.name, func(t *testing.T) {
			c := dial(t, n)
			if err := s.send(c); err != nil {
				t.Fatal(err)
			}
			m := expectError(t, c, s.code)
			if strings.Contains(m.Message, "eyJ") {
				t.Errorf("error message repeats the token: %q", m.Message)
			}
			expectClosed(t, c, s.close)
		})
	}

	afterJoin := []step{
		{"not JSON after join", text("{{{"), protocol.CodeBadMessage, 0},
		{"unknown type", text(`{"type":"teleport","id":"x"}`), protocol.CodeUnknownType, 0},
		{"wrong field type", text(`{"type":"media","audio":"yes"}`), protocol.CodeBadMessage, 0},
		{"second join", joinWith(n.joinToken(t, "s", "S", rooms.RoleClient, room)), protocol.CodeBadMessage, 0},
		{"offer that is not SDP", text(`{"type":"offer","pc":"publish","sdp":"v=banana"}`), protocol.CodeBadMessage, 0},
		{"answer with no offer pending", text(`{"type":"answer","pc":"subscribe","sdp":"v=0"}`), protocol.CodeBadMessage, 0},
		{"candidate for no PC", text(`{"type":"candidate","pc":"sideways","candidate":{"candidate":"x"}}`), protocol.CodeBadMessage, 0},
		{"moderation by a client", text(`{"type":"end"}`), protocol.CodeForbidden, 0},
		{"frame over 256 KiB after join", text(`{"type":"ping","t":"` + strings.Repeat("a", protocol.MaxFrame) + `"}`), protocol.CodeTooLarge, websocket.CloseMessageTooBig},
	}
	for _, s := range afterJoin {
		t.Run(s.name, func(t *testing.T) {
			c := joinRaw(t, n, "mallory", room)
			if err := s.send(c); err != nil {
				t.Fatal(err)
			}
			expectError(t, c, s.code)
			if s.close != 0 {
				expectClosed(t, c, s.close)
				return
			}
			expectOpen(t, c)
		})
	}

	t.Run("join that never comes", func(t *testing.T) {
		c := dial(t, n)
		start := time.Now()
		expectError(t, c, protocol.CodeJoinTimeout)
		expectClosed(t, c, websocket.ClosePolicyViolation)
		if waited := time.Since(start); waited < 4*time.Second {
			t.Errorf("closed after %s, before the 5 s join window", waited)
		}
	})

	t.Run("flood", func(t *testing.T) {
		c := joinRaw(t, n, "flooder", room)
		for i := 0; i < 400; i++ {
			if err := c.Send(map[string]any{"type": "hand", "raised": i%2 == 0}); err != nil {
				break // the server may already have closed
			}
		}
		expectError(t, c, protocol.CodeRateLimited)
		expectClosed(t, c, websocket.ClosePolicyViolation)
	})

	// The call carried on through all of it, and the room is as it was.
	before := a.Received()[client.TrackKey{Participant: b.ID(), Kind: "video"}].Packets
	eventually(t, 10*time.Second, "the call still flows", func() (bool, string) {
		return a.Received()[client.TrackKey{Participant: b.ID(), Kind: "video"}].Packets > before+30, "no new video from b"
	})
	eventually(t, 10*time.Second, "the room is back to its two participants", func() (bool, string) {
		got := n.rooms.Get(demoRef(room)).Participants()
		return len(got) == 2, fmt.Sprintf("%d participants", len(got))
	})
}
