package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"iop/rooms"
	"iop/rooms/attendance"
	"iop/rooms/chain"
	"iop/signaling/token"
)

// appendVisit records sub's presence in room from start to end, the way
// iopd's recorder does.
func appendVisit(t *testing.T, att *attendance.Store, program, sub, room string, start, end time.Time) {
	t.Helper()
	seg := "seg-" + token.RandomID(4)
	for _, e := range []attendance.Event{
		{ID: seg + "-a", Kind: attendance.KindAdmit, Program: program, Segment: seg, At: start, Room: room, RoomKind: rooms.KindGroup,
			Title: "Process group", Sub: sub, Name: "Alex", Role: rooms.RoleClient, Node: "test", Audio: true, Video: true},
		{ID: seg + "-l", Kind: attendance.KindLeave, Program: program, Segment: seg, At: end, Reason: "left"},
	} {
		if _, err := att.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIopctlAttendance: an empty program verifies and exports a bare
// header; a recorded visit shows in the report (minutes rounded down from
// exact seconds), the CSV and the chain; rebuild reports what it
// corrected, and verify fails on a removed event.
func TestIopctlAttendance(t *testing.T) {
	url := testRedis(t)
	vars := map[string]string{"IOP_REDIS_URL": url}
	p := "att-" + token.RandomID(3)

	out := mustRun(t, vars, "attendance", "verify", p)
	if !strings.HasPrefix(out, "OK "+p+": 0 events") {
		t.Errorf("verify of an empty program: %q", out)
	}
	out = mustRun(t, vars, "attendance", "export", p, "-week", "2026-W49")
	if want := attendance.CSVHeader + "\n" + attendance.CSVHeadPrefix + "chain " + p + " seq 0 hash none key none" + strings.Repeat(",", strings.Count(attendance.CSVHeader, ",")) + "\n"; out != want {
		t.Errorf("export of an empty week: %q, want a bare header and the empty chain's head", out)
	}
	csvPath := filepath.Join(t.TempDir(), "w49.csv")
	mustRun(t, vars, "attendance", "export", p, "-week", "2026-W49", "-o", csvPath)
	if b, err := os.ReadFile(csvPath); err != nil || !strings.HasPrefix(string(b), attendance.CSVHeader+"\n") {
		t.Errorf("export -o: %v %q", err, b)
	}
	if fi, err := os.Stat(csvPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the CSV file's mode: %v %v", fi.Mode(), err)
	}

	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	att := attendance.New(rdb, attendance.Options{})
	// 18:02:10 to 19:32:40 is 5,430 s: 90 minutes.
	start := time.Date(2026, 12, 1, 18, 2, 10, 0, time.UTC)
	appendVisit(t, att, p, "c1", p+"-eve-20261201", start, start.Add(5430*time.Second))

	out = mustRun(t, vars, "attendance", "report", p, "-week", "2026-W49")
	contains(t, "report", out, []string{"program " + p + ", week 2026-W49 (UTC)", "MINUTES", "BILLABLE DAYS", "Alex (c1)", "client", "90", "9h/3d"})
	out = mustRun(t, vars, "attendance", "report", p, "-week", "2026-W49", "-sub", "c1")
	contains(t, "one person's report", out, []string{"Alex (c1)", p + "-eve-20261201", "2026-12-01T18:02:10Z", "2026-12-01T19:32:40Z", "video"})
	out = mustRun(t, vars, "attendance", "export", p, "-week", "2026-W49")
	contains(t, "export", out, []string{"c1,Alex,client," + p + "-eve-20261201,group,2026-12-01,2026-12-01T18:02:10Z,2026-12-01T19:32:40Z,", ",5430,5430,video"})
	out = mustRun(t, vars, "attendance", "verify", p)
	if !strings.HasPrefix(out, "OK "+p+": 2 events, head seq 2") {
		t.Errorf("verify: %q", out)
	}

	out = mustRun(t, vars, "attendance", "rebuild", p)
	contains(t, "rebuild", out, []string{"rebuilt " + p + ": 2 events replayed into 1 segments", "no week's totals changed"})
	// A rollup altered behind the store's back is put right, and said so.
	gen, err := rdb.HGet(context.Background(), "iop:att:{"+p+"}:head", "gen").Result()
	if err != nil {
		t.Fatal(err)
	}
	rdb.HIncrBy(context.Background(), "iop:att:{"+p+"}:g"+gen+":w:c1:2026-W49", "seconds", 100)
	out = mustRun(t, vars, "attendance", "rebuild", p)
	contains(t, "rebuild after tampering", out, []string{"2026-W49 Alex (c1): seconds 5530 -> 5430, minutes 92 -> 90"})
	contains(t, "report after rebuild", mustRun(t, vars, "attendance", "report", p, "-week", "2026-W49"), []string{"  90"})

	// An event removed from the stream breaks the chain.
	first, err := rdb.XRangeN(context.Background(), "iop:att:{"+p+"}:events", "-", "+", 1).Result()
	if err != nil || len(first) != 1 {
		t.Fatal(first, err)
	}
	rdb.XDel(context.Background(), "iop:att:{"+p+"}:events", first[0].ID)
	out, err = iopctl(t, vars, "attendance", "verify", p)
	if err == nil || !strings.HasPrefix(out, "FAILED "+p) {
		t.Errorf("verify after removing an event: %v\n%s", err, out)
	}
}

// TestIopctlAttendanceTamper is issue 14's acceptance 3 through iopctl:
// with IOP_ATTENDANCE_KEY set, verify fails on an event edited with its
// hashes recomputed and on an edited rollup, and rebuild refuses the
// forged chain (and carries it only with -force, saying so).
func TestIopctlAttendanceTamper(t *testing.T) {
	ctx := context.Background()
	url := testRedis(t)
	keyHex := strings.Repeat("ab", 32)
	vars := map[string]string{"IOP_REDIS_URL": url, "IOP_ATTENDANCE_KEY": "hex:" + keyHex}
	p := "att-" + token.RandomID(3)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	key, _ := chain.ParseKey("hex:" + keyHex)
	att := attendance.New(rdb, attendance.Options{Key: key})
	start := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	appendVisit(t, att, p, "c1", p+"-eve", start, start.Add(2*time.Hour))
	appendVisit(t, att, p, "c2", p+"-eve", start, start.Add(2*time.Hour))
	events, head := "iop:att:{"+p+"}:events", "iop:att:{"+p+"}:head"

	out := mustRun(t, vars, "attendance", "verify", p)
	contains(t, "verify", out, []string{"OK " + p + ": 4 events", "keyed (HMAC-SHA256", "rollups match"})
	exported := mustRun(t, vars, "attendance", "export", p, "-week", "2026-W49")
	contains(t, "export", exported, []string{attendance.CSVHeadPrefix + "chain " + p + " seq 4 hash "})
	if _, err := iopctl(t, map[string]string{"IOP_REDIS_URL": url}, "attendance", "verify", p); err == nil {
		t.Error("verify of a keyed chain without the key passed")
	}

	// An edited rollup: an hour more for c1 on the day.
	gen, _ := rdb.HGet(ctx, head, "gen").Result()
	day := "iop:att:{" + p + "}:g" + gen + ":d:c1:2026-12-01"
	rdb.HIncrBy(ctx, day, "seconds", 3600)
	out, err = iopctl(t, vars, "attendance", "verify", p)
	if err == nil || !strings.Contains(out, "FAILED "+p) || !strings.Contains(out, "d:c1:2026-12-01 seconds: stored 10800, the events give 7200") {
		t.Errorf("verify after editing a rollup: %v\n%s", err, out)
	}
	rdb.HIncrBy(ctx, day, "seconds", -3600)

	// c1's leave an hour later, every hash to the head recomputed (with
	// SHA-256: the key is not in Redis).
	msgs, err := rdb.XRange(ctx, events, "-", "+").Result()
	if err != nil || len(msgs) != 4 {
		t.Fatal(msgs, err)
	}
	prev := msgs[0].Values["hash"].(string)
	rdb.Del(ctx, events)
	for i, m := range msgs {
		body := m.Values["event"].(string)
		if i == 1 {
			body = strings.Replace(body, "T20:00:00Z", "T21:00:00Z", 1)
		}
		hash := m.Values["hash"].(string)
		if i >= 1 {
			sum := sha256.Sum256([]byte(prev + "\n" + body))
			hash = hex.EncodeToString(sum[:])
			m.Values["prev"] = prev
		}
		rdb.XAdd(ctx, &redis.XAddArgs{Stream: events, ID: m.ID, Values: []any{"id", m.Values["id"], "prev", m.Values["prev"], "hash", hash, "event", body}})
		prev = hash
	}
	rdb.HSet(ctx, head, "hash", prev)
	out, err = iopctl(t, vars, "attendance", "verify", p)
	if err == nil || !strings.Contains(out, "FAILED "+p) || !strings.Contains(out, "seq 2") {
		t.Errorf("verify after a recomputed edit: %v\n%s", err, out)
	}
	out, err = iopctl(t, vars, "attendance", "rebuild", p)
	if err == nil || !strings.Contains(out, "REFUSED "+p) || !strings.Contains(out, "-force") {
		t.Errorf("rebuild of a forged chain: %v\n%s", err, out)
	}
	contains(t, "report after a refused rebuild", mustRun(t, vars, "attendance", "report", p, "-week", "2026-W49"), []string{"120"})
	out = mustRun(t, vars, "attendance", "rebuild", p, "-force")
	contains(t, "rebuild -force", out, []string{"WARNING " + p + ": -force: the chain is broken at seq 2", "seconds 7200 -> 10800"})
}
