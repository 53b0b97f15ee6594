package attendance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"iop/rooms"
	"iop/rooms/store"
)

// clock is a controlled clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// openRedis opens the Redis of IOP_TEST_REDIS_URL (CI: a real
// redis-server) or the embedded one, as rooms/store's tests do.
func openRedis(t *testing.T) *redis.Client {
	t.Helper()
	s, err := store.Open(context.Background(), os.Getenv("IOP_TEST_REDIS_URL"))
	if err != nil {
		t.Fatalf("open Redis: %v", err)
	}
	t.Cleanup(s.Close)
	return s.Redis
}

// testProgram returns a program id of its own for the test and removes
// its keys afterwards (tests share database 15 of a real Redis).
func testProgram(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	p := "test-" + name + "-" + hex.EncodeToString(b)
	t.Cleanup(func() { dropProgram(rdb, p) })
	return p
}

func dropProgram(rdb *redis.Client, program string) {
	ctx := context.Background()
	it := rdb.Scan(ctx, 0, escapeGlob(keysFor(program).prefix)+"*", 500).Iterator()
	for it.Next(ctx) {
		rdb.Del(ctx, it.Val())
	}
	rdb.SRem(ctx, programsKey, program)
}

// fakeSchedule expects each sub at a fixed list of sessions.
type fakeSchedule map[string][]Expected

func (f fakeSchedule) Expected(_ context.Context, _, sub string, from, to time.Time) ([]Expected, error) {
	var out []Expected
	for _, x := range f[sub] {
		if !x.Start.Before(from) && x.Start.Before(to) {
			out = append(out, x)
		}
	}
	return out, nil
}

func (f fakeSchedule) Enrolled(_ context.Context, _ string, _, _ time.Time) ([]string, error) {
	var out []string
	for sub := range f {
		out = append(out, sub)
	}
	return out, nil
}

// feed writes room events as a rooms.Manager would emit them to its
// listeners, with times the test chooses.
// feed plays room events of one program to a listener, as a room would
// emit them: rooms whose id starts with "fam" are family sessions, the
// others groups, each titled "Session <id>".
type feed struct {
	l       rooms.Listener
	program string
}

// event fills in what the room itself puts in every event.
func (f feed) event(e rooms.Event) rooms.Event {
	e.Program, e.RoomKind, e.Title = f.program, rooms.KindGroup, "Session "+e.Room
	if strings.HasPrefix(e.Room, "fam") {
		e.RoomKind = rooms.KindFamily
	}
	return e
}

// person is a participant whose audio and video reach the server.
func person(id, sub string, role rooms.Role) rooms.Participant {
	return rooms.Participant{ID: id, Sub: sub, Name: "Name of " + sub, Role: role, Audio: true, Video: true,
		Receiving: rooms.Media{Audio: true, Video: true}}
}

func (f feed) waiting(room string, p rooms.Participant, at time.Time) {
	f.l.RoomEvent(f.event(rooms.Event{Type: rooms.EventWaiting, Room: room, Participant: p, Position: 1, At: at}))
}

func (f feed) joined(room string, p rooms.Participant, at time.Time) {
	f.l.RoomEvent(f.event(rooms.Event{Type: rooms.EventJoined, Room: room, Participant: p, At: at}))
}

// media turns the person's audio and video on or off, and the server
// receives what is on.
func (f feed) media(room string, p rooms.Participant, audio, video bool, at time.Time) {
	p.Audio, p.Video = audio, video
	p.Receiving = rooms.Media{Audio: audio, Video: video}
	f.l.RoomEvent(f.event(rooms.Event{Type: rooms.EventUpdated, Room: room, Participant: p, At: at}))
}

func (f feed) left(room string, p rooms.Participant, reason string, at time.Time) {
	f.l.RoomEvent(f.event(rooms.Event{Type: rooms.EventLeft, Room: room, Participant: p, Reason: reason, At: at}))
}

func (f feed) ended(room string, at time.Time) {
	f.l.RoomEvent(f.event(rooms.Event{Type: rooms.EventEnded, Room: room, At: at}))
}

// newRecorder starts a recorder (feed it with feed{rec, program}).
func newRecorder(t *testing.T, st *Store, program string, clk *clock) *Recorder {
	t.Helper()
	rec, err := NewRecorder(st, RecorderOptions{
		Node:       "n1",
		Spool:      filepath.Join(t.TempDir(), "spool"),
		Heartbeat:  time.Hour, // tests call heartbeats themselves
		StaleAfter: -1,        // and never sweep other tests' programs
		Retry:      50 * time.Millisecond,
		Now:        clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rec.Close() })
	return rec
}

func flush(t *testing.T, rec *Recorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}
