package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"iop/rooms/audit"
	"iop/signaling/token"
)

// TestIopctlAudit: an operator shows, verifies and exports a program's
// audit trail written by iopd (here: through the package with the same
// key); an entry altered in Redis makes verify fail naming it; a missing
// key is said plainly; trim keeps the chain verifiable.
func TestIopctlAudit(t *testing.T) {
	ctx := context.Background()
	url := testRedis(t)
	const keyHex = "hex:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	vars := map[string]string{"IOP_REDIS_URL": url, "IOP_AUDIT_KEY": keyHex}
	p := "audit-" + token.RandomID(3)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() }) // after the keys are removed below
	stream, head := "iop:audit:{"+p+"}:stream", "iop:audit:{"+p+"}:head"
	t.Cleanup(func() { rdb.Del(ctx, stream, head); rdb.SRem(ctx, "iop:audit:programs", p) })

	contains(t, "verify of an empty trail", mustRun(t, vars, "audit", "verify", p), []string{"OK " + p + ": 0 entries"})
	contains(t, "show of an empty trail", mustRun(t, vars, "audit", "show", p), []string{"is empty"})

	key, err := audit.ParseKey(keyHex)
	if err != nil {
		t.Fatal(err)
	}
	l := audit.New(rdb, audit.Options{Key: key})
	old := time.Date(2015, 3, 2, 9, 0, 0, 0, time.UTC) // older than six years
	var ids []string
	for i, e := range []audit.Entry{
		{At: old, Action: audit.ActionJoin, Actor: "c-1042", Role: "client", Room: "eve-1", Addr: "192.0.2.7"},
		{At: old.Add(time.Minute), Action: audit.ActionAdmit, Actor: "t-7", Role: "therapist", Room: "eve-1", Subject: "c-1042"},
		{Action: audit.ActionRemove, Actor: "t-7", Role: "therapist", Room: "eve-1", Subject: "c-1042", Detail: "disruptive"},
		{Action: audit.ActionAttendanceExport, Actor: "st-1", Role: "staff", Detail: "GET /v1/attendance/programs/x/weeks/2026-W49.csv"},
	} {
		e.Program = p
		got, err := l.Append(ctx, e)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		ids = append(ids, got.ID)
	}

	out := mustRun(t, vars, "audit", "verify", p)
	contains(t, "verify", out, []string{"OK " + p + ": 4 entries, head seq 4", "keyed (HMAC-SHA256)"})
	out = mustRun(t, vars, "audit", "show", p, "-n", "3")
	contains(t, "show", out, []string{"SEQ", "ACTION", "2015-03-02T09:00:00Z", "join", "c-1042", "192.0.2.7", "admit", "remove",
		"more: iopctl audit show " + p + " -after " + ids[2] + " -n 3"}, "attendance_export")
	contains(t, "the next page", mustRun(t, vars, "audit", "show", p, "-after", ids[2]), []string{"attendance_export", "st-1"}, "disruptive")

	path := filepath.Join(t.TempDir(), "audit.jsonl")
	contains(t, "export -o", mustRun(t, vars, "audit", "export", p, "-o", path), []string{"wrote 4 entries of " + p})
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the export file's mode: %v %v", fi, err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan(); i++ {
		var e audit.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.ID != ids[i] || e.Seq != int64(i+1) || e.Hash == "" {
			t.Errorf("export line %d: %s (%v)", i+1, sc.Text(), err)
		}
	}

	// Without the key, a keyed trail is not verified (nor trimmed).
	noKey := map[string]string{"IOP_REDIS_URL": url}
	if out, err := iopctl(t, noKey, "audit", "verify", p); err == nil || !strings.Contains(err.Error(), "key") {
		t.Errorf("verify without the key: %v\n%s", err, out)
	}
	if _, err := iopctl(t, map[string]string{"IOP_REDIS_URL": url, "IOP_AUDIT_KEY": "short"}, "audit", "verify", p); err == nil || !strings.Contains(err.Error(), "at least 32 bytes") {
		t.Errorf("a short key: %v", err)
	}
	// The key from a file (with its newline) works as well as the variable.
	keyFile := filepath.Join(t.TempDir(), "audit.key")
	if err := os.WriteFile(keyFile, []byte(keyHex+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	contains(t, "verify with -key-file", mustRun(t, noKey, "audit", "verify", p, "-key-file", keyFile), []string{"OK " + p})

	// Retention removes the two 2015 entries and the chain still verifies.
	contains(t, "trim", mustRun(t, vars, "audit", "trim", p), []string{"trimmed " + p + ": removed 2 entries; 3 kept from seq 3, the chain verifies"})
	contains(t, "verify after trim", mustRun(t, vars, "audit", "verify", p), []string{"OK " + p + ": 3 entries from seq 3", "head seq 5"})
	if _, err := iopctl(t, map[string]string{"IOP_REDIS_URL": url, "IOP_AUDIT_KEY": keyHex, "IOP_AUDIT_RETENTION": "6h"}, "audit", "trim", p); err == nil || !strings.Contains(err.Error(), "six years") {
		t.Errorf("trim with 6h retention: %v", err)
	}

	// An entry whose subject is changed in Redis (the stream rewritten with
	// the same ids) fails verify, naming it; exit status 1.
	msgs, err := rdb.XRange(ctx, stream, "-", "+").Result()
	if err != nil || len(msgs) != 3 {
		t.Fatal(msgs, err)
	}
	rdb.Del(ctx, stream)
	for i, m := range msgs {
		body := m.Values["entry"].(string)
		if i == 0 {
			body = strings.Replace(body, `"subject":"c-1042"`, `"subject":"c-9999"`, 1)
		}
		rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: m.ID, Values: []any{"prev", m.Values["prev"], "hash", m.Values["hash"], "entry", body}})
	}
	out, err = iopctl(t, vars, "audit", "verify", p)
	if err == nil || !strings.HasPrefix(out, "FAILED "+p) || !strings.Contains(out, "seq 3 (entry "+ids[2]+"): altered") {
		t.Errorf("verify after an edit: %v\n%s", err, out)
	}
	if _, err := iopctl(t, vars, "audit", "trim", p); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("trim of an altered trail: %v", err)
	}
}

// TestIopctlAuditErrors: bad arguments are refused before anything runs.
func TestIopctlAuditErrors(t *testing.T) {
	vars := map[string]string{"IOP_REDIS_URL": testRedis(t)}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"audit"}, "want show, verify, export or trim"},
		{[]string{"audit", "delete", "p"}, "unknown"},
		{[]string{"audit", "verify"}, "want PROGRAM"},
		{[]string{"audit", "show", "p", "-n", "501"}, "1 to 500"},
		{[]string{"audit", "show", "p", "-after", "nope"}, "entry id"},
		{[]string{"audit", "verify", "a:b"}, "program id"},
		{[]string{"audit", "verify", "p"}, ""}, // an empty trail verifies
	} {
		_, err := iopctl(t, vars, tc.args...)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	if _, err := iopctl(t, nil, "audit", "verify", "p"); err == nil || !strings.Contains(err.Error(), "no Redis") {
		t.Errorf("without Redis: %v", err)
	}
}
