package signaling

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"iop/rooms"
	"iop/signaling/token"
)

// wildcard is a path wildcard ({program}, {yyyy-Www}, {secret}.ics).
var wildcard = regexp.MustCompile(`\{[^}]*\}(\.ics)?`)

// TestRouteTable: every route of the one table asks a permission, has a
// handler, is declared once, and is documented in docs/api.md (wildcard
// names aside).
func TestRouteTable(t *testing.T) {
	doc, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := wildcard.ReplaceAllString(string(doc), "{}")
	s := New(Config{})
	seen := map[string]bool{}
	for _, rt := range s.routes() {
		if rt.perm == "" || rt.handle == nil {
			t.Errorf("%s: no permission or no handler", rt.pattern)
		}
		if seen[rt.pattern] {
			t.Errorf("%s is declared twice", rt.pattern)
		}
		seen[rt.pattern] = true
		_, path, _ := strings.Cut(rt.pattern, " ")
		if !strings.Contains(documented, wildcard.ReplaceAllString(path, "{}")) {
			t.Errorf("%s is not in docs/api.md", rt.pattern)
		}
	}
}

// TestRoutesAskTheGrant drives the API over HTTP with real signed tokens:
// a stranger, a forged token, another program's staff and a client asking
// for staff data are each refused with the documented status and code
// before any handler runs; the program's own people get through.
func TestRoutesAskTheGrant(t *testing.T) {
	cfg := token.Config{Secret: []byte("0123456789abcdef0123456789abcdef")}
	v, err := token.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := token.NewMinter(cfg)
	mint := func(program, sub string, role rooms.Role, room string) string {
		c := token.Claims{Name: sub, Role: role, Room: room, Program: program}
		c.Subject = sub
		tok, err := m.Mint(c, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	forger := token.NewMinter(token.Config{Secret: []byte("another-secret-another-secret-!!")})
	fc := token.Claims{Name: "x", Role: rooms.RoleStaff, Room: rooms.AnyRoom, Program: "p1"}
	fc.Subject = "st-1"
	forged, err := forger.Mint(fc, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var (
		staffP2    = mint("p2", "st-2", rooms.RoleStaff, rooms.AnyRoom)
		therapist2 = mint("p2", "th-2", rooms.RoleTherapist, rooms.AnyRoom)
		clientP1   = mint("p1", "c-1", rooms.RoleClient, "group-a")
		familyP1   = mint("p1", "f-1", rooms.RoleFamily, "family-a")
	)
	srv := httptest.NewServer(New(Config{Verifier: v, Rooms: rooms.NewManager(nil)}).API())
	defer srv.Close()

	cases := []struct {
		who, method, path, tok string
		status                 int
		code                   string
	}{
		{"a stranger", "GET", "/v1/programs/p1/schedule", "", 401, "unauthorized"},
		{"a stranger", "GET", "/v1/attendance/programs/p1/weeks/2026-W45", "", 401, "unauthorized"},
		{"a forged token", "GET", "/v1/audit/programs/p1", forged, 401, "unauthorized"},
		{"another program's staff", "GET", "/v1/programs/p1/schedule", staffP2, 403, "forbidden"},
		{"another program's staff", "PUT", "/v1/programs/p1/blocks/c-1", staffP2, 403, "forbidden"},
		{"another program's staff", "GET", "/v1/audit/programs/p1", staffP2, 403, "forbidden"},
		{"another program's staff", "GET", "/v1/attendance/programs/p1/weeks/2026-W45", staffP2, 403, "forbidden"},
		{"another program's therapist", "DELETE", "/v1/programs/p1/enrollments/c-1", therapist2, 403, "forbidden"},
		{"a client", "PUT", "/v1/programs/p1/schedule", clientP1, 403, "forbidden"},
		{"a client", "GET", "/v1/attendance/people/c-2/weeks/2026-W45", clientP1, 403, "forbidden"},
		{"a client", "GET", "/v1/audit/programs/p1", clientP1, 403, "forbidden"},
		{"a client", "POST", "/v1/rooms/group-a/invites", clientP1, 403, "forbidden"},
		{"a family member", "GET", "/v1/attendance/people/f-1/weeks/2026-W45", familyP1, 403, "forbidden"},
		{"anyone", "GET", "/v1/no/such/endpoint", clientP1, 404, "not_found"},
		{"a client", "GET", "/v1/me/sessions", clientP1, 200, ""},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader("{}"))
		if c.tok != "" {
			req.Header.Set("Authorization", "Bearer "+c.tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Code string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != c.status || body.Code != c.code {
			t.Errorf("%s: %s %s = %d %q, want %d %q", c.who, c.method, c.path, resp.StatusCode, body.Code, c.status, c.code)
		}
	}
}
