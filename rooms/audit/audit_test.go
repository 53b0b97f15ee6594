package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"iop/rooms/chain"
)

// TestConcurrentAppends: two nodes appending at once keep one unbroken
// chain: every entry is there once, numbered 1..n, each chained to the one
// before, and paging returns each exactly once.
func TestConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	rdb := openRedis(t)
	program := testProgram(t, rdb)
	key := []byte("audit-test-key")
	nodes := []*Log{New(rdb, Options{Key: key}), New(redis.NewClient(rdb.Options()), Options{Key: key})}
	const each = 60
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes))
	for i, l := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				if _, err := l.Append(ctx, Entry{Program: program, Actor: fmt.Sprintf("node%d", i), Action: ActionJoin, Detail: fmt.Sprint(j)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	v, err := nodes[0].Verify(ctx, program)
	if err != nil || !v.OK || v.Entries != 2*each || v.Seq != 2*each {
		t.Fatalf("after concurrent appends: %+v, %v; want an intact chain of %d", v, err, 2*each)
	}
	var all []Entry
	seen := map[string]int{}
	after := ""
	for pages := 0; ; pages++ {
		page, next, err := nodes[1].Page(ctx, program, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if next == "" {
			if pages != (2*each)/7 {
				t.Errorf("%d pages of 7 for %d entries", pages+1, 2*each)
			}
			break
		}
		after = next
	}
	for i, e := range all {
		seen[fmt.Sprintf("%s %s", e.Actor, e.Detail)]++
		if e.Seq != int64(i+1) || (i > 0 && e.Prev != all[i-1].Hash) || e.Program != program || e.ID == "" {
			t.Fatalf("entry %d: %+v; want seq %d chained to the one before", i, e, i+1)
		}
	}
	if len(all) != 2*each || len(seen) != 2*each {
		t.Errorf("paging returned %d entries, %d distinct; want each of %d once", len(all), len(seen), 2*each)
	}
}

// TestVerifyFindsTampering: each edit someone with Redis write access could
// make is found, and Verify names the entry an auditor should look at.
func TestVerifyFindsTampering(t *testing.T) {
	ctx := context.Background()
	rdb := openRedis(t)
	key := []byte("the-deployment's-audit-key")
	const k = 2 // the third entry
	body := func(m redis.XMessage) string { return m.Values["entry"].(string) }
	edit := func(m redis.XMessage) string {
		return strings.Replace(body(m), `"subject":"c-c"`, `"subject":"c-z"`, 1)
	}
	// rechain recomputes hashes from entry i on with hash, as someone
	// covering an edit would, and moves the head along.
	rechain := func(t *testing.T, program string, m []redis.XMessage, i int, hash func(prev string, body []byte) string) {
		for j := i; j < len(m); j++ {
			if j > 0 {
				m[j].Values["prev"] = m[j-1].Values["hash"]
			}
			m[j].Values["hash"] = hash(m[j].Values["prev"].(string), []byte(body(m[j])))
		}
		rdb.HSet(ctx, keysFor(program).head, "hash", m[len(m)-1].Values["hash"])
	}
	sha := func(prev string, b []byte) string { return chain.Hash(nil, prev, b) }
	cases := []struct {
		name    string
		key     []byte
		edit    func(t *testing.T, program string, m []redis.XMessage) []redis.XMessage
		at      int // index of the entry named; -1 for none
		problem string
	}{{
		name: "a subject changed in place",
		edit: func(t *testing.T, p string, m []redis.XMessage) []redis.XMessage {
			m[k].Values["entry"] = edit(m[k])
			return m
		},
		at: k, problem: ProblemAltered,
	}, {
		name: "a subject changed and the chain recomputed with SHA-256 (unkeyed chain)",
		edit: func(t *testing.T, p string, m []redis.XMessage) []redis.XMessage {
			m[k].Values["entry"] = edit(m[k])
			m[k].Values["hash"] = sha(m[k].Values["prev"].(string), []byte(body(m[k])))
			return m // its successor still names the old hash
		},
		at: k, problem: ProblemAltered,
	}, {
		name: "keyed: a subject changed and everything after recomputed with plain SHA-256",
		key:  key,
		edit: func(t *testing.T, p string, m []redis.XMessage) []redis.XMessage {
			m[k].Values["entry"] = edit(m[k])
			rechain(t, p, m, k, sha)
			return m
		},
		at: k, problem: ProblemAltered,
	}, {
		name: "keyed: a subject changed and everything after recomputed with a guessed key",
		key:  key,
		edit: func(t *testing.T, p string, m []redis.XMessage) []redis.XMessage {
			m[k].Values["entry"] = edit(m[k])
			rechain(t, p, m, k, func(prev string, b []byte) string { return chain.Hash([]byte("guess"), prev, b) })
			return m
		},
		at: k, problem: ProblemAltered,
	}, {
		name: "keyed: the whole chain recomputed with plain SHA-256 and the head's key cleared",
		key:  key,
		edit: func(t *testing.T, p string, m []redis.XMessage) []redis.XMessage {
			rechain(t, p, m, 0, sha)
			rdb.HSet(ctx, keysFor(p).head, "key", "")
			return m
		},
		at: 0, problem: ProblemAltered,
	}, {
		name: "an entry moved from another program",
		edit: func(t *testing.T, p string, m []redis.XMessage) []redis.XMessage {
			m[k].Values["entry"] = strings.Replace(body(m[k]), `"program":"`+p+`"`, `"program":"other"`, 1)
			m[k].Values["hash"] = sha(m[k].Values["prev"].(string), []byte(body(m[k])))
			return m
		},
		at: k, problem: ProblemAltered,
	}, {
		name:    "an entry removed",
		edit:    func(t *testing.T, p string, m []redis.XMessage) []redis.XMessage { return append(m[:k:k], m[k+1:]...) },
		at:      k + 1, // the entry after the gap
		problem: ProblemMissingBefore,
	}, {
		name:    "the first entries removed",
		edit:    func(t *testing.T, p string, m []redis.XMessage) []redis.XMessage { return m[2:] },
		at:      2,
		problem: ProblemMissingBefore,
	}, {
		name: "the first entries removed and an anchor forged in the head",
		key:  key,
		edit: func(t *testing.T, p string, m []redis.XMessage) []redis.XMessage {
			rdb.HSet(ctx, keysFor(p).head, "anchor_seq", 3, "anchor_prev", m[1].Values["hash"])
			return m[2:]
		},
		at: 2, problem: ProblemMissingBefore,
	}, {
		name:    "the last entry removed",
		edit:    func(t *testing.T, p string, m []redis.XMessage) []redis.XMessage { return m[:len(m)-1] },
		at:      4, // the last one left
		problem: ProblemMissingAfter,
	}, {
		name:    "every entry removed",
		edit:    func(t *testing.T, p string, m []redis.XMessage) []redis.XMessage { return nil },
		at:      -1,
		problem: ProblemMissingAfter,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			program := testProgram(t, rdb)
			l := New(rdb, Options{Key: tc.key})
			appendN(t, l, program, 6)
			if v, err := l.Verify(ctx, program); err != nil || !v.OK || v.Entries != 6 || v.Keyed != (tc.key != nil) {
				t.Fatalf("intact chain: %+v, %v", v, err)
			}
			orig := readStream(t, rdb, program)
			writeStream(t, rdb, program, tc.edit(t, program, readStream(t, rdb, program)))
			v, err := l.Verify(ctx, program)
			if err != nil {
				t.Fatal(err)
			}
			want := Finding{Problem: tc.problem}
			if tc.at >= 0 {
				want.StreamID, want.Seq = orig[tc.at].ID, int64(tc.at+1)
			}
			if v.OK || v.First == nil || *v.First != want {
				t.Errorf("Verify: %+v (first %+v); want it to name %+v", v, v.First, want)
			}
		})
	}
}

// TestAppendRefuses: what must never be in the trail is refused, and the
// error names the field without repeating its value.
func TestAppendRefuses(t *testing.T) {
	ctx := context.Background()
	rdb := openRedis(t)
	program := testProgram(t, rdb)
	l := New(rdb, Options{})
	jwt := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjLTEwNDIifQ.c2lnbmF0dXJl"
	ok := Entry{Program: program, Actor: "t-7", Role: "therapist", Action: ActionRemove, Room: "eve-1", Subject: "c-1042"}
	cases := []struct {
		name string
		edit func(*Entry)
	}{
		{"a token as the detail", func(e *Entry) { e.Detail = "token=" + jwt }},
		{"a token as the subject", func(e *Entry) { e.Subject = jwt }},
		{"a token as the actor", func(e *Entry) { e.Actor = jwt }},
		{"a token as the room", func(e *Entry) { e.Room = jwt }},
		{"a token as the code", func(e *Entry) { e.Code = jwt }},
		{"a token as the role", func(e *Entry) { e.Role = jwt }},
		{"SDP as the detail", func(e *Entry) { e.Detail = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\n" }},
		{"ICE credentials", func(e *Entry) { e.Detail = "a=ice-pwd:asd88fgpdd777uzjYhagZg" }},
		{"a detail too long", func(e *Entry) { e.Detail = strings.Repeat("x", maxDetail+1) }},
		{"a subject too long", func(e *Entry) { e.Subject = strings.Repeat("x", maxField+1) }},
		{"invalid UTF-8", func(e *Entry) { e.Subject = "c-\xff" }},
		{"an unknown action", func(e *Entry) { e.Action = "delete_everything" }},
		{"a trim from outside Trim", func(e *Entry) { e.Action = ActionTrim }},
		{"no action", func(e *Entry) { e.Action = "" }},
		{"no program", func(e *Entry) { e.Program = "" }},
		{"a program with braces", func(e *Entry) { e.Program = "a}{b" }},
		{"a program with a colon", func(e *Entry) { e.Program = "a:b" }},
		{"a program too long", func(e *Entry) { e.Program = strings.Repeat("p", maxProgram+1) }},
		{"an address that is no IP", func(e *Entry) { e.Addr = "example.org" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := ok
			tc.edit(&e)
			_, err := l.Append(ctx, e)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Append: %v, want ErrInvalid", err)
			}
			if strings.Contains(err.Error(), "eyJ") || strings.Contains(err.Error(), "ice-pwd") {
				t.Errorf("the error repeats the value: %v", err)
			}
		})
	}
	if n, _ := rdb.XLen(ctx, keysFor(program).stream).Result(); n != 0 {
		t.Errorf("%d refused entries were stored", n)
	}

	// What is accepted is stored as given, the address without its port.
	clk := &clock{now: time.Date(2026, 12, 1, 18, 2, 10, 123456789, time.FixedZone("EST", -5*3600))}
	l = New(rdb, Options{Now: clk.Now})
	e := ok
	e.Addr = "[2001:db8::1]:50123"
	got, err := l.Append(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if got.Addr != "2001:db8::1" || !got.At.Equal(time.Date(2026, 12, 1, 23, 2, 10, 123e6, time.UTC)) || got.At.Location() != time.UTC || got.Seq != 1 || got.Prev != "" {
		t.Errorf("stored %+v", got)
	}
	page, _, err := l.Page(ctx, program, "", 0)
	if err != nil || len(page) != 1 || !reflect.DeepEqual(page[0], got) {
		t.Errorf("Page: %+v, %v; want what Append returned: %+v", page, err, got)
	}
}

// TestKeys: a node without the key, or with another one, cannot extend a
// keyed chain (which would break it), and says why.
func TestKeys(t *testing.T) {
	ctx := context.Background()
	rdb := openRedis(t)
	program := testProgram(t, rdb)
	appendN(t, New(rdb, Options{Key: []byte("k1")}), program, 2)
	for _, l := range []*Log{New(rdb, Options{}), New(rdb, Options{Key: []byte("k2")})} {
		if _, err := l.Append(ctx, Entry{Program: program, Action: ActionJoin}); !errors.Is(err, ErrWrongKey) {
			t.Errorf("append with the wrong key (keyed %v): %v, want ErrWrongKey", l.Keyed(), err)
		}
	}
	if _, err := New(rdb, Options{}).Verify(ctx, program); !errors.Is(err, ErrKeyRequired) {
		t.Errorf("verify without the key: %v, want ErrKeyRequired", err)
	}
	v, err := New(rdb, Options{Key: []byte("k2")}).Verify(ctx, program)
	if err != nil || v.OK || !v.WrongKey || v.First == nil || v.First.Seq != 1 {
		t.Errorf("verify with another key: %+v, %v; want a failure at seq 1 saying the key differs", v, err)
	}
	// And an unkeyed chain is not extended by a keyed node.
	plain := testProgram(t, rdb)
	appendN(t, New(rdb, Options{}), plain, 1)
	if _, err := New(rdb, Options{Key: []byte("k1")}).Append(ctx, Entry{Program: plain, Action: ActionJoin}); !errors.Is(err, ErrWrongKey) {
		t.Errorf("keyed append to an unkeyed chain: %v, want ErrWrongKey", err)
	}
}

// TestPageAndExport: paging validates its cursor and caps its size; the
// export is one JSON entry per line, the same as the pages.
func TestPageAndExport(t *testing.T) {
	ctx := context.Background()
	rdb := openRedis(t)
	program := testProgram(t, rdb)
	l := New(rdb, Options{Key: []byte("k")})
	if page, next, err := l.Page(ctx, program, "", 10); err != nil || page == nil || len(page) != 0 || next != "" {
		t.Errorf("an empty trail: %v %q %v; want an empty page and no next", page, next, err)
	}
	want := appendN(t, l, program, 3)
	for _, bad := range []string{"x", "1-", "-", "+", "(1-0", "1-0 "} {
		if _, _, err := l.Page(ctx, program, bad, 10); !errors.Is(err, ErrInvalid) {
			t.Errorf("after %q: %v, want ErrInvalid", bad, err)
		}
	}
	page, next, err := l.Page(ctx, program, want[0].ID, 1)
	if err != nil || len(page) != 1 || page[0].Seq != 2 || next != want[1].ID {
		t.Errorf("second page of 1: %+v next %q, %v", page, next, err)
	}
	appendN(t, l, program, MaxPageSize)
	if page, next, _ := l.Page(ctx, program, "", 10*MaxPageSize); len(page) != MaxPageSize || next == "" {
		t.Errorf("a page asked for %d entries held %d (next %q); want the cap %d", 10*MaxPageSize, len(page), next, MaxPageSize)
	}
	var buf bytes.Buffer
	if err := l.Export(ctx, &buf, program); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	n := 0
	for sc.Scan() {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		if n < 3 && !reflect.DeepEqual(e, want[n]) {
			t.Errorf("line %d: %+v, want %+v", n+1, e, want[n])
		}
		if e.Seq != int64(n+1) {
			t.Errorf("line %d has seq %d", n+1, e.Seq)
		}
		n++
	}
	if n != 3+MaxPageSize {
		t.Errorf("export has %d lines, want %d", n, 3+MaxPageSize)
	}
}

// BenchmarkAppend: appends to one program's chain, from b.N goroutines'
// worth of parallel writers (go test -bench Append -cpu 1,4).
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	s, err := storeForBench()
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	program := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	defer s.Redis.Del(ctx, keysFor(program).stream, keysFor(program).head)
	defer s.Redis.SRem(ctx, programsKey, program)
	l := New(s.Redis, Options{Key: []byte("bench-key-bench-key-bench-key-32")})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(ctx, Entry{Program: program, Actor: "t-7", Action: ActionAdmit, Subject: "c-1", Room: "eve-1"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	start := time.Now()
	v, err := l.Verify(ctx, program)
	if err != nil || !v.OK {
		b.Fatalf("%+v %v", v, err)
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(v.Entries), "verify-ns/entry")
}
