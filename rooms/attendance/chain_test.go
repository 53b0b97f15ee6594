package attendance

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"iop/rooms"
)

// scenario returns the events of an evening in one program: admissions,
// camera changes, a resumed drop, an ended session, a segment still open,
// and a duplicate leave.
func scenario(program string, ny *time.Location) []Event {
	ts := func(hh, mm, ss int) time.Time { return at(ny, 2026, 10, 26, hh, mm, ss) }
	var evs []Event
	n := 0
	add := func(e Event) {
		n++
		e.ID = fmt.Sprintf("ev-%03d", n)
		e.Program = program
		evs = append(evs, e)
	}
	admit := func(seg, room, sub string, role rooms.Role, t time.Time) {
		add(Event{Kind: KindAdmit, Segment: seg, Room: room, RoomKind: rooms.KindGroup, Title: "Relapse prevention",
			Sub: sub, Name: "Name " + sub, Role: role, At: t, Audio: true, Video: true})
	}
	admit("s-th", "eve-1", "th1", rooms.RoleTherapist, ts(17, 55, 0))
	for i := 1; i <= 4; i++ {
		admit(fmt.Sprintf("s-c%d", i), "eve-1", fmt.Sprintf("c%d", i), rooms.RoleClient, ts(18, i, 0))
	}
	add(Event{Kind: KindMedia, Segment: "s-c1", At: ts(18, 20, 0), Audio: true})
	add(Event{Kind: KindMedia, Segment: "s-c1", At: ts(18, 50, 0), Audio: true, Video: true})
	add(Event{Kind: KindLeave, Segment: "s-c2", At: ts(18, 30, 0), Reason: rooms.ReasonDropped})
	add(Event{Kind: KindResume, Segment: "s-c2", Room: "eve-1", RoomKind: rooms.KindGroup, Sub: "c2", Role: rooms.RoleClient, At: ts(18, 30, 40), Audio: true})
	add(Event{Kind: KindLeave, Segment: "s-c3", At: ts(19, 15, 0), Reason: rooms.ReasonRemoved})
	add(Event{Kind: KindLeave, Segment: "s-c3", At: ts(19, 16, 0), Reason: rooms.ReasonLeft}) // no effect
	for _, s := range []string{"s-th", "s-c1", "s-c2"} {
		add(Event{Kind: KindLeave, Segment: s, At: ts(21, 0, 0), Reason: rooms.ReasonEnded})
	}
	admit("s-c5", "eve-2", "c5", rooms.RoleClient, ts(23, 30, 0)) // still open after midnight
	return evs
}

func appendAll(t *testing.T, st *Store, evs []Event) {
	t.Helper()
	for _, e := range evs {
		if _, err := st.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot reads every key of the program's live rollup generation, with
// the generation left out of the names.
func snapshot(t *testing.T, st *Store, program string) map[string]any {
	t.Helper()
	ctx := context.Background()
	k := keysFor(program)
	h, err := readHead(ctx, st.rdb, k)
	if err != nil {
		t.Fatal(err)
	}
	gp := k.gen(h.gen)
	out := map[string]any{}
	it := st.rdb.Scan(ctx, 0, escapeGlob(gp)+"*", 500).Iterator()
	for it.Next(ctx) {
		key := it.Val()
		name := strings.TrimPrefix(key, gp)
		switch st.rdb.Type(ctx, key).Val() {
		case "hash":
			out[name] = st.rdb.HGetAll(ctx, key).Val()
		case "set":
			m := st.rdb.SMembers(ctx, key).Val()
			sort.Strings(m)
			out[name] = m
		}
	}
	return out
}

func weekJSON(t *testing.T, st *Store, program string) string {
	t.Helper()
	r, err := st.ProgramWeek(context.Background(), program, Week{Year: 2026, Num: 44})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	return string(b)
}

// TestAcceptanceChain is acceptance 5: the same event delivered twice
// counts once; altering one event in Redis makes Verify name it; Rebuild
// equals the live rollups.
func TestAcceptanceChain(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	st, program, clk := newStore(t, Options{})
	clk.Set(at(ny, 2026, 10, 27, 0, 30, 0))
	evs := scenario(program, ny)
	appendAll(t, st, evs)
	before := weekJSON(t, st, program)
	live := snapshot(t, st, program)

	t.Run("duplicates count once", func(t *testing.T) {
		rec, err := st.Append(ctx, evs[len(evs)-3]) // a leave, delivered again
		if err != nil || !rec.Duplicate || rec.Seq != int64(len(evs)-2) {
			t.Fatalf("second delivery: %+v, %v; want a duplicate of seq %d", rec, err, len(evs)-2)
		}
		appendAll(t, st, evs) // a whole replay, as after a spool
		if after := weekJSON(t, st, program); after != before {
			t.Errorf("replaying every event changed the week:\n%s\n%s", before, after)
		}
		if !reflect.DeepEqual(snapshot(t, st, program), live) {
			t.Error("replaying every event changed the rollups")
		}
		r, _ := st.Room(ctx, program, "eve-1")
		if p := findPerson(t, r, "c2"); p.Seconds != int64((21*60-(18*60+2))*60-40) {
			t.Errorf("c2 has %d s, want 18:02 to 21:00 less 40 s", p.Seconds)
		}
	})

	t.Run("rebuild equals the live rollups", func(t *testing.T) {
		res, err := st.Rebuild(ctx, program)
		if err != nil {
			t.Fatal(err)
		}
		if res.Events != int64(len(evs)) || res.Segments != 6 {
			t.Errorf("rebuild replayed %d events into %d segments, want %d and 6", res.Events, res.Segments, len(evs))
		}
		rebuilt := snapshot(t, st, program)
		if len(rebuilt) == 0 || !reflect.DeepEqual(rebuilt, live) {
			t.Errorf("rebuilt rollups differ from the live ones:\nlive    %v\nrebuilt %v", live, rebuilt)
		}
		if after := weekJSON(t, st, program); after != before {
			t.Errorf("the week reads differently after rebuild:\n%s\n%s", before, after)
		}
		n, _ := st.rdb.Keys(ctx, escapeGlob(keysFor(program).gen(0))+"*").Result()
		if len(n) != 0 {
			t.Errorf("the old generation's keys are still there: %v", n)
		}
		// Appends go to the new generation.
		e := Event{ID: "ev-late", Program: program, Kind: KindLeave, Segment: "s-c5", At: at(ny, 2026, 10, 27, 0, 15, 0), Reason: "left"}
		if _, err := st.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
		r, _ := st.Room(ctx, program, "eve-2")
		if p := findPerson(t, r, "c5"); p.Seconds != 45*60 || p.Segments[0].End == nil {
			t.Errorf("c5 after the late leave: %+v, want a closed 45 min segment", p)
		}
		live2 := snapshot(t, st, program)
		if _, err := st.Rebuild(ctx, program); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(snapshot(t, st, program), live2) {
			t.Error("a second rebuild differs from the live rollups")
		}
	})

	t.Run("verify names the altered or removed event", func(t *testing.T) {
		v, err := st.Verify(ctx, program)
		if err != nil || !v.OK || v.Events != int64(len(evs)+1) {
			t.Fatalf("intact chain: %+v, %v", v, err)
		}
		orig := readStream(t, st.rdb, program)
		k := 6 // the 7th entry: a camera change
		cases := []struct {
			name    string
			edit    func([]redis.XMessage) []redis.XMessage
			at      int
			problem string
		}{{
			name: "an event's time moved by an hour",
			edit: func(m []redis.XMessage) []redis.XMessage {
				m[k].Values["event"] = strings.Replace(m[k].Values["event"].(string), "T22:50:00Z", "T21:50:00Z", 1)
				return m
			},
			at: k, problem: ProblemAltered,
		}, {
			name: "an event altered and its own hash recomputed",
			edit: func(m []redis.XMessage) []redis.XMessage {
				body := strings.Replace(m[k].Values["event"].(string), `"video":true`, `"video":false`, 1)
				m[k].Values["event"] = body
				m[k].Values["hash"] = chainHash(m[k].Values["prev"].(string), []byte(body))
				return m
			},
			at: k, problem: ProblemAltered,
		}, {
			name: "an event removed",
			edit: func(m []redis.XMessage) []redis.XMessage { return append(m[:k:k], m[k+1:]...) },
			at:   k, problem: ProblemMissingBefore, // names the event after the gap
		}, {
			name: "the last event removed",
			edit: func(m []redis.XMessage) []redis.XMessage { return m[:len(m)-1] },
			at:   len(orig) - 2, problem: ProblemMissingAfter,
		}}
		for _, c := range cases {
			msgs := c.edit(copyStream(orig))
			writeStream(t, st.rdb, program, msgs)
			v, err := st.Verify(ctx, program)
			if err != nil {
				t.Fatal(err)
			}
			want := msgs[c.at]
			if v.OK || v.First == nil || v.First.StreamID != want.ID || v.First.EventID != want.Values["id"] || v.First.Problem != c.problem {
				t.Errorf("%s: verify says %+v, want %s %s (%s)", c.name, v.First, want.ID, want.Values["id"], c.problem)
			}
			writeStream(t, st.rdb, program, orig)
		}
		if v, _ := st.Verify(ctx, program); !v.OK {
			t.Errorf("restored chain: %+v", v.First)
		}
	})
}

func readStream(t *testing.T, rdb *redis.Client, program string) []redis.XMessage {
	t.Helper()
	m, err := rdb.XRange(context.Background(), keysFor(program).events, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func copyStream(in []redis.XMessage) []redis.XMessage {
	out := make([]redis.XMessage, len(in))
	for i, m := range in {
		v := map[string]any{}
		for k, x := range m.Values {
			v[k] = x
		}
		out[i] = redis.XMessage{ID: m.ID, Values: v}
	}
	return out
}

// writeStream replaces the program's stream with msgs, keeping their ids:
// what someone with write access to Redis could do.
func writeStream(t *testing.T, rdb *redis.Client, program string, msgs []redis.XMessage) {
	t.Helper()
	ctx := context.Background()
	key := keysFor(program).events
	rdb.Del(ctx, key)
	for _, m := range msgs {
		vals := []any{"id", m.Values["id"], "prev", m.Values["prev"], "hash", m.Values["hash"], "event", m.Values["event"]}
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: m.ID, Values: vals}).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConcurrentAppends: nodes appending to one program at once keep one
// unbroken chain, and a rebuild running meanwhile ends equal to the live
// rollups.
func TestConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	st, program, _ := newStore(t, Options{})
	const nodes, perNode = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, nodes+1)
	t0 := at(ny, 2026, 10, 26, 18, 0, 0)
	for n := 0; n < nodes; n++ {
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			for i := 0; i < perNode; i++ {
				seg := fmt.Sprintf("n%d-s%d", n, i/5)
				e := Event{ID: fmt.Sprintf("n%d-e%d", n, i), Program: program, Segment: seg, At: t0.Add(time.Duration(i) * time.Minute)}
				switch i % 5 {
				case 0:
					e.Kind, e.Room, e.Sub, e.Role, e.Video = KindAdmit, "r", fmt.Sprintf("c%d", n), rooms.RoleClient, true
				case 4:
					e.Kind, e.Reason = KindLeave, "left"
				default:
					e.Kind, e.Audio, e.Video = KindMedia, true, i%2 == 0
				}
				if _, err := st.Append(ctx, e); err != nil {
					errs <- err
					return
				}
			}
		}(n)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(5 * time.Millisecond)
		if _, err := st.Rebuild(ctx, program); err != nil {
			errs <- err
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	v, err := st.Verify(ctx, program)
	if err != nil || !v.OK || v.Seq != nodes*perNode || v.Events != nodes*perNode {
		t.Fatalf("after concurrent appends: %+v, %v; want an intact chain of %d", v, err, nodes*perNode)
	}
	live := snapshot(t, st, program)
	if _, err := st.Rebuild(ctx, program); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(snapshot(t, st, program), live) {
		t.Error("rollups written during a concurrent rebuild differ from a quiet rebuild")
	}
	w, _ := st.Week(ctx, program, "c0", Week{Year: 2026, Num: 44})
	if w.Seconds != 5*4*60 { // 5 segments of 4 minutes
		t.Errorf("c0 has %d s, want %d", w.Seconds, 5*4*60)
	}
}

// TestSweepDeadNode: a node dies holding open segments; a sweeper closes
// them at their last heartbeat, once, and a node that was only cut off
// from Redis gets its time back when it reports again.
func TestSweepDeadNode(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	st, program, _ := newStore(t, Options{})
	t0 := at(ny, 2026, 10, 26, 18, 0, 0)
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	for _, s := range []string{"a", "b", "c"} {
		e := Event{ID: "admit-" + s, Program: program, Kind: KindAdmit, Segment: s, Room: "r", Sub: "sub-" + s, Role: rooms.RoleClient, At: t0, Video: true}
		if _, err := st.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// Heartbeats every 15 s; the node holding a and b dies after the one
	// at 30 s (the people really left at about 40 s); c's node lives on.
	for _, hb := range []int{15, 30} {
		if _, err := st.Heartbeat(ctx, program, []string{"a", "b", "c"}, sec(hb)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Heartbeat(ctx, program, []string{"c"}, sec(75)); err != nil {
		t.Fatal(err)
	}
	now := sec(80)
	n, err := st.SweepStale(ctx, program, now.Add(-45*time.Second))
	if err != nil || n != 2 {
		t.Fatalf("sweep closed %d segments (%v), want a and b", n, err)
	}
	if n, _ := st.SweepStale(ctx, program, now.Add(-45*time.Second)); n != 0 {
		t.Errorf("a second sweep closed %d more", n)
	}
	open, _ := st.OpenSegments(ctx, program)
	if len(open) != 1 || open[0].ID != "c" || !open[0].LastSeen.Equal(sec(75)) {
		t.Errorf("open after the sweep: %+v, want c last seen at 75 s", open)
	}
	r, _ := st.Room(ctx, program, "r")
	for _, sub := range []string{"sub-a", "sub-b"} {
		s := findPerson(t, r, sub).Segments[0]
		if s.End == nil || !s.End.Equal(sec(30)) || s.Reason != ReasonLost || s.Seconds != 30 {
			t.Errorf("%s closed %+v, want at the last heartbeat (30 s) as lost", sub, s)
		}
	}
	// b's node was only cut off from Redis: its heartbeat finds b closed,
	// and its late leave at 100 s gives the time back.
	missing, _ := st.Heartbeat(ctx, program, []string{"b"}, sec(90))
	if len(missing) != 1 || missing[0] != "b" {
		t.Errorf("heartbeat reports %v missing, want b", missing)
	}
	if _, err := st.Append(ctx, Event{ID: "leave-b", Program: program, Kind: KindLeave, Segment: "b", At: sec(100), Reason: "left"}); err != nil {
		t.Fatal(err)
	}
	r, _ = st.Room(ctx, program, "r")
	if s := findPerson(t, r, "sub-b").Segments[0]; s.Seconds != 100 || s.Reason != "left" {
		t.Errorf("b after its node reported back: %+v, want 100 s, left", s)
	}
	live := snapshot(t, st, program)
	if _, err := st.Rebuild(ctx, program); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(snapshot(t, st, program), live) {
		t.Error("rebuild after sweeps and revival differs from the live rollups")
	}
}
