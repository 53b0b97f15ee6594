package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"iop/rooms"
	"iop/rooms/attendance"
	"iop/rooms/audit"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// TestAuditTrail is acceptance 4 of "Programs are tenants": a scripted
// session (joins, a refusal, admission, a mute, a removal, a lock, an
// attendance export by staff) leaves its trace in the program's trail, with
// who did it and from where; the program's staff read it and nobody else;
// `iopctl audit verify` passes, and fails naming the entry once one entry
// is altered in Redis.
func TestAuditTrail(t *testing.T) {
	url := sharedRedis(t)
	n := testNode(t, withRedis(url))
	program, other := tenants()
	room := uniqueRoom("audit")
	host := rawJoin(t, n, programToken(t, n, program, "t-host", "Dana", rooms.RoleTherapist, room))
	code, c := joinCode(t, n, programToken(t, n, program, "c-1", "Alex", rooms.RoleClient, room))
	if code != protocol.TypeWaiting {
		t.Fatal(code)
	}
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeAdmit, Participant: "*"}); got != "" {
		t.Fatal(got)
	}
	alex := waitType(t, c, protocol.TypeJoined).You.ID
	for _, m := range []protocol.ClientMessage{
		{Type: protocol.TypeMute, Participant: alex, Kind: "video"},
		{Type: protocol.TypeRemove, Participant: alex, Reason: "step out"},
		{Type: protocol.TypeLock, Locked: ptr(true)},
	} {
		if got := host.ask(t, m); got != "" {
			t.Fatalf("%s: %s", m.Type, got)
		}
	}
	if code, _ := joinCode(t, n, programToken(t, n, program, "c-1", "Alex", rooms.RoleClient, room)); code != protocol.CodeRemoved {
		t.Fatalf("the removed client rejoining: %s", code)
	}
	staff := programToken(t, n, program, "st-billing", "Riley", rooms.RoleStaff, token.AnyRoom)
	csv := getCSV(t, n, "/v1/attendance/programs/"+program+"/weeks/"+attendance.WeekOf(time.Now(), time.UTC).String()+".csv", staff)
	lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
	head, ok := strings.CutPrefix(strings.TrimRight(lines[len(lines)-1], ","), attendance.CSVHeadPrefix+"chain "+program+" ")
	if !ok || !strings.HasPrefix(head, "seq ") {
		t.Errorf("the export's last line %q does not give the chain head", lines[len(lines)-1])
	}

	want := []struct{ action, actor, subject, code string }{
		{audit.ActionJoin, "t-host", "t-host", ""},
		{audit.ActionJoin, "c-1", "c-1", ""},
		{audit.ActionAdmit, "t-host", "c-1", ""},
		{audit.ActionMute, "t-host", "c-1", ""},
		{audit.ActionRemove, "t-host", "c-1", ""},
		{audit.ActionLock, "t-host", "", ""},
		{audit.ActionRefuse, "c-1", "", protocol.CodeRemoved},
		{audit.ActionAttendanceExport, "st-billing", "", ""},
	}
	var entries []audit.Entry
	eventually(t, 10*time.Second, "the session's trail", func() (bool, string) {
		var page struct {
			Entries []audit.Entry `json:"entries"`
		}
		if status := faultGet(t, n.url, "/v1/audit/programs/"+program+"?limit=500", staff, &page); status != http.StatusOK {
			return false, http.StatusText(status)
		}
		entries = page.Entries
		return len(entries) >= len(want), strings.Join(actions(entries), ", ")
	})
	for _, w := range want {
		found := false
		for _, e := range entries {
			if e.Action != w.action || e.Actor != w.actor || e.Subject != w.subject || e.Code != w.code {
				continue
			}
			found = true
			if e.Program != program || e.At.IsZero() || e.Hash == "" {
				t.Errorf("entry %+v: want the program, a time and a hash", e)
			}
			if e.Action == audit.ActionAttendanceExport && !strings.HasSuffix(e.Detail, ".csv "+head) {
				t.Errorf("the export's entry %q does not record the head the CSV gives (%s)", e.Detail, head)
			}
			if (e.Action == audit.ActionJoin || e.Action == audit.ActionAttendanceExport) && e.Addr != "127.0.0.1" {
				t.Errorf("%s by %s from %q, want the client's address", e.Action, e.Actor, e.Addr)
			}
		}
		if !found {
			t.Errorf("the trail reads %v; %+v is missing", actions(entries), w)
		}
	}
	for _, e := range entries {
		if strings.Contains(e.Detail+e.Subject+e.Actor, "Alex") || strings.Contains(e.Detail, "eyJ") {
			t.Errorf("the trail holds a name or a token: %+v", e)
		}
	}
	for who, tok := range map[string]string{
		"the program's therapist":     programToken(t, n, program, "t-host", "Dana", rooms.RoleTherapist, token.AnyRoom),
		"a client":                    programToken(t, n, program, "c-1", "Alex", rooms.RoleClient, room),
		"another program's staff":     programToken(t, n, other, "st-x", "Eve", rooms.RoleStaff, token.AnyRoom),
		"another program's therapist": programToken(t, n, other, "t-x", "Eve", rooms.RoleTherapist, token.AnyRoom),
	} {
		if status := faultGet(t, n.url, "/v1/audit/programs/"+program, tok, &map[string]any{}); status != http.StatusForbidden {
			t.Errorf("%s reading the trail: %d, want 403", who, status)
		}
	}

	iopctl := buildCommand(t, "iopctl")
	run := func(args ...string) (string, error) {
		cmd := exec.Command(iopctl, args...)
		cmd.Env = append(os.Environ(), "IOP_REDIS_URL="+url)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("audit", "verify", program); err != nil || !strings.HasPrefix(out, "OK "+program) {
		t.Fatalf("iopctl audit verify after the session: %v\n%s", err, out)
	}
	// Someone with write access to Redis changes whom the removal was of.
	rdb := redis.NewClient(mustParseRedis(t, url))
	defer rdb.Close()
	ctx := context.Background()
	stream := "iop:audit:{" + program + "}:stream"
	msgs, err := rdb.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var altered string
	rdb.Del(ctx, stream)
	for _, m := range msgs {
		body := m.Values["entry"].(string)
		if altered == "" && strings.Contains(body, `"action":"remove"`) {
			body = strings.Replace(body, `"subject":"c-1"`, `"subject":"c-2"`, 1)
			altered = m.ID
		}
		rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: m.ID, Values: []any{"prev", m.Values["prev"], "hash", m.Values["hash"], "entry", body}})
	}
	if altered == "" {
		t.Fatal("no removal in the stream to alter")
	}
	out, err := run("audit", "verify", program)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out, altered) || !strings.Contains(out, "altered") {
		t.Errorf("iopctl audit verify after an entry was altered: %v\n%s\nwant exit status 1 naming entry %s", err, out, altered)
	}
}

func actions(es []audit.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Action+"("+e.Actor+"->"+e.Subject+")")
	}
	return out
}

func mustParseRedis(t *testing.T, url string) *redis.Options {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return o
}
