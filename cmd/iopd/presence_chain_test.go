package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"iop/rooms"
	"iop/rooms/attendance"
	"iop/signaling/client"
	"iop/signaling/token"
)

// TestPresenceChainTamper is finding 8 as a scripted session: a node that
// keys its attendance chain records a real session; someone with write
// access to Redis but not the key then edits the client's leave (an hour
// later) and recomputes every hash to the head, and separately edits a
// day's rollup. Verify names the edited event and the edited rollup, the
// head an earlier export carried no longer holds, and rebuild refuses to
// carry the forged hour into the reports unless forced. The chain is the
// program's own, in a Redis of the test's own: a keyed chain stays keyed,
// which other tests' unkeyed nodes must not meet.
func TestPresenceChainTamper(t *testing.T) {
	ctx := context.Background()
	r := startFaultRedis(t)
	n := testNode(t, func(c *config) {
		c.RedisURL = r.url()
		c.AttendanceKey = "hex:" + strings.Repeat("5a", 32)
		c.pingInterval, c.idleTimeout = time.Second, 8*time.Second
	})
	program := "chain-" + token.RandomID(3)
	room, sub := program+"-room", "cl-"+randomHex(3)
	join := func(sub string, role rooms.Role) (*client.Participant, time.Time) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		p, err := client.Join(ctx, n.url, programToken(t, n, program, sub, sub, role, room), client.Options{AutoAdmit: role == rooms.RoleTherapist})
		if err != nil {
			t.Fatalf("%s joins: %v", sub, err)
		}
		at := time.Now()
		t.Cleanup(p.Close)
		if err := p.WaitPublishing(ctx); err != nil {
			t.Fatal(err)
		}
		return p, at
	}
	therSub := "th-" + randomHex(3)
	ther, _ := join(therSub, rooms.RoleTherapist)
	cli, start := join(sub, rooms.RoleClient)
	time.Sleep(3 * time.Second)
	leftAt := time.Now()
	cli.Leave()
	ther.Leave()
	staff := programToken(t, n, program, "st-"+randomHex(2), "Riley", rooms.RoleStaff, token.AnyRoom)
	p := closedPerson(t, n, staff, room, sub, 1)
	within(t, "the client's seconds as recorded", p.Seconds, leftAt.Sub(start))
	recorded := p.Seconds
	closedPerson(t, n, staff, room, therSub, 1) // every event written before the edits

	v, err := n.attendance.Verify(ctx, program)
	if err != nil || !v.OK || v.Key == "" {
		t.Fatalf("the untouched chain: %+v, %v; want it keyed and OK", v, err)
	}
	loc, err := time.LoadLocation(faultZone(t, n.url, room, staff))
	if err != nil {
		t.Fatal(err)
	}
	y, w := time.Now().In(loc).ISOWeek()
	week := isoWeek(y, w)
	exportHead := func() attendance.ChainHead {
		t.Helper()
		body := getCSV(t, n, "/v1/attendance/programs/"+program+"/weeks/"+week+".csv", staff)
		lines := strings.Split(strings.TrimSpace(body), "\n")
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last, attendance.CSVHeadPrefix+"chain "+program+" ") {
			t.Fatalf("the export's last line %q does not carry the chain head", last)
		}
		h, err := attendance.ParsePoint(program, strings.TrimRight(last, ","))
		if err != nil || h.Key == "" {
			t.Fatalf("the export's head %q: %+v, %v; want it signed with the key", last, h, err)
		}
		return h
	}
	exported := exportHead()
	if exported.Hash != v.Head || exported.Seq != v.Seq {
		t.Fatalf("the export carries %+v, the chain's head is seq %d %s", exported, v.Seq, v.Head)
	}

	opts, err := redis.ParseURL(r.url())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	prefix := "iop:att:{" + program + "}:"

	// An edited rollup: an hour more for the client on the day.
	gen, err := rdb.HGet(ctx, prefix+"head", "gen").Result()
	if err != nil {
		t.Fatal(err)
	}
	dayKey := prefix + "g" + gen + ":d:" + sub + ":" + start.In(loc).Format("2006-01-02")
	if n, err := rdb.HIncrBy(ctx, dayKey, "seconds", 3600).Result(); err != nil || n != recorded+3600 {
		t.Fatalf("edit %s: %d, %v (recorded %d)", dayKey, n, err, recorded)
	}
	v, err = n.attendance.Verify(ctx, program)
	if err != nil || v.OK || v.Rollup == nil || !strings.Contains(v.Rollup.Key, sub) {
		t.Errorf("verify after an edited rollup: %+v, %v; want it to fail naming %s's day", v, err, sub)
	}
	rdb.HIncrBy(ctx, dayKey, "seconds", -3600)

	// The client's leave an hour later, every hash from it to the head
	// recomputed without the key.
	msgs, err := rdb.XRange(ctx, prefix+"events", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var edited attendance.Event
	prev := ""
	if err := rdb.Del(ctx, prefix+"events").Err(); err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		body := m.Values["event"].(string)
		var e attendance.Event
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Fatal(err)
		}
		if edited.ID == "" && e.Kind == attendance.KindLeave && e.Segment == p.Segments[0].ID {
			was, _ := json.Marshal(e.At)
			forged, _ := json.Marshal(e.At.Add(time.Hour))
			body = strings.Replace(body, `"at":`+string(was), `"at":`+string(forged), 1)
			if body == m.Values["event"] {
				t.Fatalf("the leave event's time is not where the test looks: %s", body)
			}
			edited = e
		}
		values := []any{"id", m.Values["id"], "prev", m.Values["prev"], "hash", m.Values["hash"], "event", body}
		if edited.ID != "" {
			sum := sha256.Sum256([]byte(prev + "\n" + body))
			values[3], values[5] = prev, hex.EncodeToString(sum[:])
		}
		if k, ok := m.Values["key"]; ok {
			values = append(values, "key", k)
		}
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: prefix + "events", ID: m.ID, Values: values}).Err(); err != nil {
			t.Fatalf("re-add entry %d: %v", i, err)
		}
		prev = values[5].(string)
	}
	if edited.ID == "" {
		t.Fatalf("no leave event of the client's segment %s in the chain", p.Segments[0].ID)
	}
	rdb.HSet(ctx, prefix+"head", "hash", prev)

	v, err = n.attendance.Verify(ctx, program)
	if err != nil || v.OK || v.First == nil || v.First.EventID != edited.ID || v.First.Seq != edited.Seq {
		t.Errorf("verify after a recomputed edit: %+v (first %+v), %v; want it to fail at the client's leave, seq %d id %s", v, v.First, err, edited.Seq, edited.ID)
	}
	if checks, err := n.attendance.CheckHeads(ctx, program, []attendance.ChainHead{exported}); err != nil || len(checks) != 1 || checks[0].OK {
		t.Errorf("the head the earlier export carried still holds after the edit: %+v, %v", checks, err)
	}
	if again := exportHead(); again.Hash == exported.Hash {
		t.Errorf("an export after the edit carries the same head %s", again.Hash)
	}

	// Rebuild refuses the forged chain: the reports keep the recorded time.
	if res, err := n.attendance.Rebuild(ctx, program); err == nil {
		t.Errorf("rebuild of the forged chain went ahead: %+v", res)
	}
	if p := closedPerson(t, n, staff, room, sub, 1); p.Seconds != recorded {
		t.Errorf("after a refused rebuild the client has %d s, recorded %d", p.Seconds, recorded)
	}
	// Forced, it carries the forged hour, and verify still fails there.
	if _, err := n.attendance.RebuildForce(ctx, program); err != nil {
		t.Fatalf("rebuild -force: %v", err)
	}
	if p := closedPerson(t, n, staff, room, sub, 1); p.Seconds != recorded+3600 {
		t.Errorf("after a forced rebuild the client has %d s, want the forged %d", p.Seconds, recorded+3600)
	}
	if v, err := n.attendance.Verify(ctx, program); err != nil || v.OK || v.First == nil || v.First.EventID != edited.ID {
		t.Errorf("verify after a forced rebuild: %+v, %v; want it still to fail at %s", v, err, edited.ID)
	}
}
