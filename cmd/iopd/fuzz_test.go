package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"iop/rooms"
	"iop/signaling/client"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// fuzzNode is a node for fuzzing: the per-address limits are lifted, since
// every input comes from this one address.
func fuzzNode(f *testing.F) *node {
	return testNode(f, func(c *config) {
		c.JoinRate = 1e6
		c.JoinBurst = 1e6
		c.UnjoinedPerAddr = 1 << 20
	})
}

// FuzzSignal sends one frame of any content to a real iopd from a joined
// therapist (the message table after join: media, moderation and their
// malformed forms), then a ping: the server must answer the ping or close
// the socket with a close frame, and never crash or hang.
func FuzzSignal(f *testing.F) {
	n := fuzzNode(f)
	for _, s := range []string{
		`{"type":"ping","t":1}`,
		`{"type":"media","audio":false,"video":true}`,
		`{"type":"hand","raised":true}`,
		`{"type":"lock","locked":true}`,
		`{"type":"mute","participant":"p0","kind":"audio"}`,
		`{"type":"admit","participant":"p0"}`,
		`{"type":"remove","participant":"p0","reason":"x"}`,
		`{"type":"host","participant":"p0"}`,
		`{"type":"layer","participant":"p0","quality":"low"}`,
		`{"type":"breakout_open","rooms":3,"seconds":60,"assign":{"p0":1}}`,
		`{"type":"breakout_open","rooms":2}`,
		`{"type":"breakout_move","participant":"p0","group":2}`,
		`{"type":"breakout_visit","group":1}`,
		`{"type":"breakout_close"}`,
		`{"type":"candidate","pc":"publish","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}}`,
		`{"type":"candidate","pc":"subscribe","candidate":null}`,
		`{"type":"offer","pc":"publish","sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"}`,
		`{"type":"answer","pc":"subscribe","sdp":"garbage"}`,
		`{"type":"join","v":1,"token":"x"}`,
		`{"type":"nope"}`, `{"type":1}`, `{}`, `[]`, `"x"`, ``,
	} {
		f.Add([]byte(s))
	}
	tok := n.joinToken(f, "fz-therapist", "Fuzz", rooms.RoleTherapist, "fuzz")
	f.Fuzz(func(t *testing.T, frame []byte) {
		c, err := client.Dial(context.Background(), n.url, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		deadline := time.Now().Add(20 * time.Second)
		if err := c.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Token: tok}); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := c.Read(deadline)
			if err != nil {
				t.Fatalf("join: %v", err)
			}
			if m.Type == protocol.TypeJoined {
				break
			}
		}
		_ = c.SendRaw(websocket.TextMessage, frame)
		_ = c.Send(map[string]any{"type": "ping", "id": "after-fuzz"})
		for {
			m, err := c.Read(deadline)
			var ce *websocket.CloseError
			switch {
			case errors.As(err, &ce):
				return // the frame ended the session (leave, end, remove of oneself...)
			case err != nil:
				t.Fatalf("no pong and no close after %q: %v", frame, err)
			case m.Type == protocol.TypePong && m.Re == "after-fuzz":
				return
			}
		}
	})
}

// restRoutes are the routes with a request body, and a path for each.
var restRoutes = []struct{ method, path string }{
	{"POST", "/v1/rooms/fuzz/invites"},
	{"PUT", "/v1/programs/demo/blocks/fz-client"},
	{"POST", "/v1/me/calendar"},
	{"POST", "/v1/connectivity"},
	{"PUT", "/v1/programs/demo/schedule"},
	{"PUT", "/v1/programs/demo/tracks/fz"},
	{"PUT", "/v1/programs/demo/sessions/fz"},
	{"PUT", "/v1/programs/demo/holidays/2026-12-24"},
	{"PUT", "/v1/programs/demo/cancellations/fz/2026-12-24"},
	{"PUT", "/v1/programs/demo/enrollments/fz-client"},
	{"POST", "/v1/programs/demo/enrollments/fz-client/track"},
	{"POST", "/v1/programs/demo/enrollments/fz-client/end"},
	{"POST", "/v1/programs/demo/bookings"},
}

// FuzzRESTBodies sends request bodies of any content to every route of the
// staff API that reads one, as staff and as a therapist: the answer is a
// 2xx or 4xx, never a 5xx (a body is the caller's mistake, not the
// server's) and never a hang.
func FuzzRESTBodies(f *testing.F) {
	n := fuzzNode(f)
	for i := range restRoutes {
		for _, body := range []string{`{}`, `null`, `[]`, `{"track":"day","start":"2026-12-01"}`,
			`{"id":"fz","name":"F","kind":"group","weekdays":["mon"],"start":"09:00","length":"1h"}`,
			`{"program":{"id":"demo","name":"D","time_zone":"UTC"}}`, `{"name":"Fam","ttl":"1h"}`, "{\"a\":" + strings.Repeat("[", 100)} {
			f.Add(uint8(i), false, []byte(body))
		}
	}
	f.Add(uint8(0), true, []byte(`{"name":"Fam"}`))
	staff := n.joinToken(f, "fz-staff", "Staff", rooms.RoleStaff, token.AnyRoom)
	therapist := n.joinToken(f, "fz-therapist", "Fuzz", rooms.RoleTherapist, token.AnyRoom)
	f.Fuzz(func(t *testing.T, route uint8, asTherapist bool, body []byte) {
		rt := restRoutes[int(route)%len(restRoutes)]
		bearer := staff
		if asTherapist {
			bearer = therapist
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, rt.method, n.url+rt.path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+bearer)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", rt.method, rt.path, err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s with %q: %d %s", rt.method, rt.path, body, resp.StatusCode, out)
		}
	})
}
