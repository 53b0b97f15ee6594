package audit

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// trail appends n entries a day apart from start, moving clk.
func trail(t *testing.T, l *Log, clk *clock, program string, start time.Time, n int) []Entry {
	t.Helper()
	var out []Entry
	for i := 0; i < n; i++ {
		clk.Set(start.Add(time.Duration(i) * 24 * time.Hour))
		out = append(out, appendN(t, l, program, 1)...)
	}
	return out
}

func verifyOK(t *testing.T, l *Log, program string, entries, anchor int64) Verification {
	t.Helper()
	v, err := l.Verify(context.Background(), program)
	if err != nil || !v.OK || v.Entries != entries || v.Anchor != anchor {
		t.Fatalf("Verify: %+v (first %+v), %v; want OK with %d entries from seq %d", v, v.First, err, entries, anchor)
	}
	return v
}

// TestTrim: retention removes what is older than six years and nothing
// else; the chain still verifies and says itself where it was cut; removing
// more afterwards is still found.
func TestTrim(t *testing.T) {
	ctx := context.Background()
	rdb := openRedis(t)
	program := testProgram(t, rdb)
	clk := &clock{}
	l := New(rdb, Options{Key: []byte("k"), Now: clk.Now})
	start := time.Date(2019, 6, 1, 0, 0, 0, 0, time.UTC)
	old := trail(t, l, clk, program, start, 5) // 1 June to 5 June 2019

	// Six years and a day after 2 June (DefaultRetention, 2,192 days),
	// entries of 1, 2 and 3 June 2019 are due; 4 and 5 June are not.
	clk.Set(start.Add(2*24*time.Hour + DefaultRetention + time.Hour))
	n, err := l.Trim(ctx, program)
	if err != nil || n != 3 {
		t.Fatalf("Trim: %d, %v; want 3 removed", n, err)
	}
	verifyOK(t, l, program, 3, 4)
	page, _, err := l.Page(ctx, program, "", 0)
	if err != nil || len(page) != 3 || page[0].ID != old[3].ID || page[1].ID != old[4].ID {
		t.Fatalf("after trim: %+v, %v; want the entries of 4 and 5 June and the trim", page, err)
	}
	tr := page[2]
	if tr.Action != ActionTrim || tr.Actor != "" || tr.Seq != 6 || tr.Detail != fmt.Sprintf("anchor 4 %s", old[2].Hash) {
		t.Errorf("the trim's own entry: %+v; want seq 6 naming anchor 4 and entry 3's hash", tr)
	}
	if n, err := l.Trim(ctx, program); err != nil || n != 0 {
		t.Errorf("a second trim: %d, %v; want nothing to do", n, err)
	}
	appendN(t, l, program, 2)
	verifyOK(t, l, program, 5, 4)

	// Twenty years on, everything goes but the new trim's own entry.
	clk.Set(start.AddDate(20, 0, 0))
	if n, err := l.Trim(ctx, program); err != nil || n != 5 {
		t.Fatalf("Trim of everything: %d, %v; want 5", n, err)
	}
	v := verifyOK(t, l, program, 1, 9)
	if v.Seq != 9 {
		t.Errorf("head seq %d, want 9", v.Seq)
	}
	appendN(t, l, program, 2)
	verifyOK(t, l, program, 3, 9)

	// Removing the first kept entry after a trim is found.
	first := readStream(t, rdb, program)[0]
	rdb.XDel(ctx, keysFor(program).stream, first.ID)
	v, err = l.Verify(ctx, program)
	if err != nil || v.OK || v.First == nil || v.First.Seq != 10 || v.First.Problem != ProblemMissingBefore {
		t.Errorf("first kept entry removed: %+v (first %+v), %v; want missing_before at seq 10", v, v.First, err)
	}
	// and Trim then refuses to destroy the evidence.
	clk.Set(start.AddDate(40, 0, 0))
	if n, err := l.Trim(ctx, program); !errors.Is(err, ErrBroken) || n != 0 {
		t.Errorf("Trim of a broken chain: %d, %v; want ErrBroken", n, err)
	}
	if n, _ := rdb.XLen(ctx, keysFor(program).stream).Result(); n != 2 {
		t.Errorf("%d entries left, want the 2 that were there", n)
	}
}

// TestTrimRefusesShortRetention: a retention below six years (a typo such
// as 6h) removes nothing.
func TestTrimRefusesShortRetention(t *testing.T) {
	ctx := context.Background()
	rdb := openRedis(t)
	program := testProgram(t, rdb)
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	appendN(t, New(rdb, Options{Now: clk.Now}), program, 3)
	clk.Set(clk.Now().AddDate(1, 0, 0))
	l := New(rdb, Options{Retention: 6 * time.Hour, Now: clk.Now})
	if n, err := l.Trim(ctx, program); !errors.Is(err, ErrRetention) || n != 0 {
		t.Errorf("Trim with 6h: %d, %v; want ErrRetention", n, err)
	}
	verifyOK(t, l, program, 3, 1)
}

// TestTrimInterrupted: a trim that recorded its cut and moved the anchor
// but died before removing anything leaves a chain that verifies, and the
// next Trim finishes the job.
func TestTrimInterrupted(t *testing.T) {
	ctx := context.Background()
	rdb := openRedis(t)
	program := testProgram(t, rdb)
	clk := &clock{}
	l := New(rdb, Options{Now: clk.Now})
	start := time.Date(2019, 6, 1, 0, 0, 0, 0, time.UTC)
	old := trail(t, l, clk, program, start, 4)
	clk.Set(start.AddDate(7, 0, 0))
	// What Trim does before removing entries 1 and 2.
	if _, err := l.append(ctx, record{At: clk.Now(), Program: program, Action: ActionTrim, Detail: fmt.Sprintf(trimDetail, 3, old[1].Hash)}); err != nil {
		t.Fatal(err)
	}
	if err := anchorScript.Run(ctx, rdb, []string{keysFor(program).head}, 3, old[1].Hash).Err(); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, l, program, 3, 3)
	// Entries 3 and 4 are old too: the next trim cuts after them, and
	// removes 1 and 2 on the way.
	if n, err := l.Trim(ctx, program); err != nil || n != 4 {
		t.Fatalf("Trim after an interrupted one: %d, %v; want 4", n, err)
	}
	verifyOK(t, l, program, 2, 5)
}

// TestParseConfig: the key and retention settings read as documented.
func TestParseConfig(t *testing.T) {
	k64 := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for in, want := range map[string]int{"": 0, "hex:" + k64: 32, k64: 64, k64 + "\n": 64, "hex:" + k64 + k64: 64} {
		if k, err := ParseKey(in); err != nil || len(k) != want {
			t.Errorf("ParseKey(%q): %d bytes, %v; want %d", in, len(k), err, want)
		}
	}
	for _, bad := range []string{"short", "hex:" + k64[:62], "hex:zz" + k64} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
	for in, want := range map[string]time.Duration{"": DefaultRetention, "2192d": DefaultRetention, "3000d": 3000 * 24 * time.Hour, "52608h": DefaultRetention} {
		if d, err := ParseRetention(in); err != nil || d != want {
			t.Errorf("ParseRetention(%q): %v, %v; want %v", in, d, err, want)
		}
	}
	for _, bad := range []string{"6h", "2191d", "6y", "-1d", "d"} {
		if _, err := ParseRetention(bad); err == nil {
			t.Errorf("ParseRetention(%q) accepted", bad)
		}
	}
}
