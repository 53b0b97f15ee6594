package attendance

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"iop/rooms/chain"
)

var (
	testKey  = []byte("0123456789abcdef0123456789abcdef")
	otherKey = []byte("fedcba9876543210fedcba9876543210")
)

// forge rewrites the program's chain from entry k on as someone with write
// access to Redis would: edit changes entry k's event, then every hash from
// there on and the head are recomputed with key (nil: plain SHA-256, all
// such a person can do without the key).
func forge(t *testing.T, st *Store, program string, k int, key []byte, edit func(string) string) {
	t.Helper()
	msgs := copyStream(readStream(t, st.rdb, program))
	msgs[k].Values["event"] = edit(msgs[k].Values["event"].(string))
	for i := k; i < len(msgs); i++ {
		if i > 0 {
			msgs[i].Values["prev"] = msgs[i-1].Values["hash"]
		}
		msgs[i].Values["hash"] = chain.Hash(key, msgs[i].Values["prev"].(string), []byte(msgs[i].Values["event"].(string)))
	}
	writeStream(t, st.rdb, program, msgs)
	st.rdb.HSet(context.Background(), keysFor(program).head, "hash", msgs[len(msgs)-1].Values["hash"])
}

// TestKeyedChainFindsRecomputedEdits (issue 14, finding 8): with a key, an
// event edited and its hashes recomputed to the head no longer verifies;
// without one the same forgery verifies, and only a head recorded elsewhere
// (an export's) shows it.
func TestKeyedChainFindsRecomputedEdits(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	for _, keyed := range []bool{true, false} {
		name := "unkeyed"
		opts := Options{}
		if keyed {
			name, opts.Key = "keyed", testKey
		}
		t.Run(name, func(t *testing.T) {
			st, program, _ := newStore(t, opts)
			appendAll(t, st, scenario(program, ny))
			v, err := st.Verify(ctx, program)
			if err != nil || !v.OK || (v.Key != "") != keyed || (keyed && v.KeyedFrom != 1) {
				t.Fatalf("intact chain: %+v, %v", v, err)
			}
			exported, err := st.Head(ctx, program)
			if err != nil || exported.Seq != v.Seq || exported.Hash != v.Head || exported.Key != v.Key {
				t.Fatalf("Head %+v, %v; verify says seq %d hash %s key %s", exported, err, v.Seq, v.Head, v.Key)
			}
			k := 6
			forge(t, st, program, k, nil, func(b string) string { return strings.Replace(b, `"video":true`, `"video":false`, 1) })
			v, err = st.Verify(ctx, program)
			if err != nil {
				t.Fatal(err)
			}
			if !keyed {
				// The chain holds; only the rollups, not yet rebuilt, tell.
				// Rebuilt by the forger, everything verifies: only the head
				// recorded elsewhere shows the chain is not the one exported.
				if v.First != nil || v.Rollup == nil {
					t.Errorf("unkeyed: %+v: want the chain to hold and the rollups to differ", v)
				}
				if _, err := st.Rebuild(ctx, program); err != nil {
					t.Fatal(err)
				}
				if v, err = st.Verify(ctx, program); err != nil || !v.OK || v.Head == exported.Hash {
					t.Errorf("unkeyed, rebuilt: verify %+v, %v; want OK with a head other than the exported %s", v, err, exported.Hash)
				}
				return
			}
			want := readStream(t, st.rdb, program)[k]
			if v.OK || v.First == nil || v.First.StreamID != want.ID || v.First.Problem != ProblemAltered {
				t.Errorf("keyed: verify says %+v, want %s altered", v.First, want.ID)
			}
		})
	}
}

// TestKeyingAnOldChain: a chain begun without a key keeps verifying once
// a keyed node appends to it (keyed from that event on); a node with
// another key, or none, refuses to append rather than fork it, and a
// verifier without the key is told it needs one.
func TestKeyingAnOldChain(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	old, program, _ := newStore(t, Options{})
	evs := scenario(program, ny)
	appendAll(t, old, evs[:5])
	keyed := New(old.rdb, Options{Key: testKey, Now: old.opts.Now})
	appendAll(t, keyed, evs[5:])
	v, err := keyed.Verify(ctx, program)
	if err != nil || !v.OK || v.KeyedFrom != 6 || v.Key == "" {
		t.Fatalf("verify after keying at seq 6: %+v, %v", v, err)
	}
	if h, _ := keyed.Head(ctx, program); !strings.HasSuffix(h.String(), "key "+v.Key+" from 6") {
		t.Errorf("head %q does not say where keying began", h)
	}
	msgs := readStream(t, old.rdb, program)
	if msgs[4].Values["hash"] != chainHash(msgs[4].Values["prev"].(string), []byte(msgs[4].Values["event"].(string))) {
		t.Error("the old events are no longer plain SHA-256")
	}

	other := New(old.rdb, Options{Key: otherKey, Now: old.opts.Now})
	late := Event{ID: "late", Kind: KindLeave, Program: program, Segment: "s-c3", At: evs[len(evs)-1].At, Reason: "left"}
	for name, s := range map[string]*Store{"another key": other, "no key": old} {
		if _, err := s.Append(ctx, late); !errors.Is(err, ErrWrongKey) {
			t.Errorf("append with %s: %v, want ErrWrongKey", name, err)
		}
	}
	if n := len(readStream(t, old.rdb, program)); n != len(msgs) {
		t.Errorf("a refused append changed the stream: %d entries, want %d", n, len(msgs))
	}
	if _, err := old.Verify(ctx, program); !errors.Is(err, ErrKeyRequired) {
		t.Errorf("verify without the key: %v, want ErrKeyRequired", err)
	}
	if v, err := other.Verify(ctx, program); err != nil || v.OK || !v.WrongKey || v.First == nil || v.First.Seq != 6 {
		t.Errorf("verify with another key: %+v, %v; want wrong key, altered at seq 6", v, err)
	}
	if _, err := old.Rebuild(ctx, program); !errors.Is(err, ErrKeyRequired) {
		t.Errorf("rebuild without the key: %v, want ErrKeyRequired", err)
	}

	// Stripping the keyed part back to plain SHA-256, head and all, is found
	// by the key holder: the head no longer says where keying began.
	forge(t, keyed, program, 5, nil, func(b string) string { return b })
	keyed.rdb.HDel(ctx, keysFor(program).head, "keyed_from")
	if v, err := keyed.Verify(ctx, program); err != nil || v.OK {
		t.Errorf("a keyed part recomputed without the key verifies: %+v, %v", v, err)
	}
}

// TestVerifyChecksRollups (finding 8): a rollup edited behind the store's
// back fails verify, which names it; rebuild puts it right.
func TestVerifyChecksRollups(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	st, program, _ := newStore(t, Options{Key: testKey})
	appendAll(t, st, scenario(program, ny))
	v, err := st.Verify(ctx, program)
	if err != nil || !v.OK || v.Rollups == 0 {
		t.Fatalf("intact: %+v, %v", v, err)
	}
	h, _ := readHead(ctx, st.rdb, keysFor(program))
	gp := keysFor(program).gen(h.gen)
	edits := []struct {
		name  string
		do    func()
		undo  func()
		key   string
		field string
	}{
		{"an hour added to a day", func() { st.rdb.HIncrBy(ctx, gp+"d:c2:2026-10-26", "seconds", 3600) },
			func() { st.rdb.HIncrBy(ctx, gp+"d:c2:2026-10-26", "seconds", -3600) }, "d:c2:2026-10-26", "seconds"},
		{"a person added to a week", func() { st.rdb.SAdd(ctx, gp+"people:2026-W44", "ghost") },
			func() { st.rdb.SRem(ctx, gp+"people:2026-W44", "ghost") }, "people:2026-W44", "ghost"},
		{"a forged day", func() { st.rdb.HSet(ctx, gp+"d:ghost:2026-10-27", "seconds", 10800) },
			func() { st.rdb.Del(ctx, gp+"d:ghost:2026-10-27") }, "d:ghost:2026-10-27", "seconds"},
	}
	for _, e := range edits {
		e.do()
		v, err := st.Verify(ctx, program)
		if err != nil || v.OK || v.First != nil || v.Rollup == nil || v.Rollup.Key != e.key || v.Rollup.Field != e.field {
			t.Errorf("%s: verify says %+v (rollup %+v), %v; want %s %s", e.name, v, v.Rollup, err, e.key, e.field)
		}
		e.undo()
	}
	st.rdb.HIncrBy(ctx, gp+"w:c2:2026-W44", "seconds", 60)
	if _, err := st.Rebuild(ctx, program); err != nil {
		t.Fatal(err)
	}
	if v, err := st.Verify(ctx, program); err != nil || !v.OK {
		t.Errorf("after rebuild: %+v, %v", v.Rollup, err)
	}
}

// TestRebuildRefusesBrokenChain (finding 8): rebuild does not carry a
// forged hour into the rollups; forced, it does and says what was wrong.
func TestRebuildRefusesBrokenChain(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	st, program, _ := newStore(t, Options{Key: testKey})
	appendAll(t, st, scenario(program, ny))
	before := snapshot(t, st, program)
	h0, _ := readHead(ctx, st.rdb, keysFor(program))
	msgs := readStream(t, st.rdb, program)
	k := -1
	for i, m := range msgs { // the first leave at 22:xx local: make it an hour later
		if strings.Contains(m.Values["event"].(string), `"kind":"leave"`) && strings.Contains(m.Values["event"].(string), "T22:") {
			k = i
			break
		}
	}
	if k < 0 {
		t.Fatal("the scenario has no leave at 22:xx UTC")
	}
	forge(t, st, program, k, nil, func(b string) string { return strings.Replace(b, "T22:", "T23:", 1) })

	_, err := st.Rebuild(ctx, program)
	if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), msgs[k].ID) {
		t.Fatalf("rebuild of a forged chain: %v, want ErrBroken naming %s", err, msgs[k].ID)
	}
	if h, _ := readHead(ctx, st.rdb, keysFor(program)); h.gen != h0.gen {
		t.Errorf("a refused rebuild swapped the rollups: generation %d, was %d", h.gen, h0.gen)
	}
	if got := snapshot(t, st, program); !reflect.DeepEqual(got, before) {
		t.Error("a refused rebuild changed the rollups")
	}
	n, _ := st.rdb.Keys(ctx, escapeGlob(keysFor(program).prefix)+"g*").Result()
	for _, key := range n {
		if !strings.HasPrefix(key, keysFor(program).gen(h0.gen)) {
			t.Errorf("a refused rebuild left %s", key)
		}
	}

	res, err := st.RebuildForce(ctx, program)
	if err != nil || res.Broken == nil || res.Broken.StreamID != msgs[k].ID {
		t.Fatalf("forced rebuild: %+v, %v", res, err)
	}
	if reflect.DeepEqual(snapshot(t, st, program), before) {
		t.Error("a forced rebuild did not carry the edit into the rollups")
	}
}
