package attendance

import (
	"context"
	"errors"
	"strings"
	"testing"

	"iop/rooms/chain"
)

// TestKeyRotation: a chain keyed with one key passes to a new one; the
// node with both verifies all of it; a node with the old key only can no
// longer append; a verifier without the old key finds the old part
// unverifiable; a forgery with recomputed hashes fails under both.
func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	evs := scenario("", ny)
	oldSt, program, _ := newStore(t, Options{Key: testKey})
	for i := range evs {
		evs[i].Program = program
	}
	appendAll(t, oldSt, evs[:8])
	rotated := New(oldSt.rdb, Options{Key: otherKey, OldKeys: [][]byte{testKey}, Now: oldSt.opts.Now})
	appendAll(t, rotated, evs[8:])
	h, _ := rotated.Head(ctx, program)
	if h.Key != chain.KeyID(otherKey, keyLabel) || h.KeyedFrom != 1 {
		t.Fatalf("head after rotation %+v: want the new key's id, keyed from 1", h)
	}
	msgs := readStream(t, rotated.rdb, program)
	if msgs[0].Values["key"] != chain.KeyID(testKey, keyLabel) || msgs[len(msgs)-1].Values["key"] != h.Key {
		t.Errorf("entries do not name their keys: %v ... %v", msgs[0].Values["key"], msgs[len(msgs)-1].Values["key"])
	}
	if v, err := rotated.Verify(ctx, program); err != nil || !v.OK {
		t.Fatalf("old and new key: %+v %+v, %v", v.First, v.Rollup, err)
	}
	if _, err := rotated.Rebuild(ctx, program); err != nil {
		t.Fatalf("rebuild after rotation: %v", err)
	}
	if _, err := oldSt.Append(ctx, Event{ID: "late", Kind: KindLeave, Program: program, Segment: "s-c5", At: evs[0].At, Reason: "left"}); !errors.Is(err, ErrWrongKey) {
		t.Errorf("a node with the old key only appended: %v", err)
	}
	newOnly := New(oldSt.rdb, Options{Key: otherKey, Now: oldSt.opts.Now})
	if v, err := newOnly.Verify(ctx, program); err != nil || v.OK || v.First == nil || v.First.StreamID != msgs[0].ID {
		t.Errorf("without the old key: %+v, %v; want the first entry unverifiable", v.First, err)
	}
	// Someone with Redis but neither key recomputes the chain from the
	// new part on, naming the new key's id.
	forge(t, rotated, program, 9, nil, func(b string) string { return strings.Replace(b, `"video":true`, `"video":false`, 1) })
	if v, err := rotated.Verify(ctx, program); err != nil || v.OK || v.First == nil || v.First.StreamID != msgs[9].ID {
		t.Errorf("forged after rotation: %+v, %v; want entry 9 altered", v.First, err)
	}
}

// TestCheckHeadsFindsARewrittenChain: an unkeyed chain rewritten with
// recomputed hashes verifies by itself; the head an export recorded does
// not hold any more.
func TestCheckHeadsFindsARewrittenChain(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	st, program, _ := newStore(t, Options{})
	evs := scenario(program, ny)
	appendAll(t, st, evs[:10])
	early, _ := st.Head(ctx, program)
	appendAll(t, st, evs[10:])
	late, _ := st.Head(ctx, program)
	parsed, err := ParsePoint(program, "GET /v1/attendance/programs/x/weeks/2026-W44.csv "+late.Point())
	if err != nil || parsed != late {
		t.Fatalf("ParsePoint(%q) = %+v, %v", late.Point(), parsed, err)
	}
	checks, err := st.CheckHeads(ctx, program, []ChainHead{early, late})
	if err != nil || !checks[0].OK || !checks[1].OK {
		t.Fatalf("intact: %+v, %v", checks, err)
	}
	forge(t, st, program, 3, nil, func(b string) string { return strings.Replace(b, `"video":true`, `"video":false`, 1) })
	if _, err := st.Rebuild(ctx, program); err != nil {
		t.Fatal(err)
	}
	if v, err := st.Verify(ctx, program); err != nil || !v.OK {
		t.Fatalf("the rewritten unkeyed chain should verify by itself: %+v, %v", v, err)
	}
	checks, err = st.CheckHeads(ctx, program, []ChainHead{early, late})
	if err != nil || checks[0].OK || checks[1].OK || checks[0].Found == "" {
		t.Errorf("recorded heads after the rewrite: %+v, %v; want both broken", checks, err)
	}
}
