package attendance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"iop/rooms"
)

// evening feeds one evening group with a therapist and four clients:
// camera changes, a resumed drop, a removal, a second connection and the
// end of the session. step is called between events so that a test can
// act while they flow.
func evening(f feed, ny *time.Location, step func(i int)) {
	ts := func(hh, mm, ss int) time.Time { return at(ny, 2026, 10, 27, hh, mm, ss) }
	room := "eve-2026-10-27"
	th := person("x-th", "th1", rooms.RoleTherapist)
	c := []rooms.Participant{
		person("x-c1", "c1", rooms.RoleClient), person("x-c2", "c2", rooms.RoleClient),
		person("x-c3", "c3", rooms.RoleClient), person("x-c4", "c4", rooms.RoleClient),
	}
	c2b, c4b := person("x-c2b", "c2", rooms.RoleClient), person("x-c4b", "c4", rooms.RoleClient)
	script := []func(){
		func() { f.joined(room, th, ts(17, 55, 0)) },
		func() { f.waiting(room, c[0], ts(17, 57, 0)) },
		func() { f.joined(room, c[0], ts(18, 0, 5)) },
		func() { f.joined(room, c[1], ts(18, 1, 0)) },
		func() { f.joined(room, c[2], ts(18, 2, 30)) },
		func() { f.joined(room, c[3], ts(18, 3, 0)) },
		func() { f.media(room, c[0], true, false, ts(18, 20, 0)) },
		func() { f.left(room, c[1], rooms.ReasonDropped, ts(18, 30, 0)) },
		func() { f.joined(room, c2b, ts(18, 30, 40)) },
		func() { f.media(room, c[0], true, true, ts(18, 45, 10)) },
		func() { f.joined(room, c4b, ts(19, 0, 0)) },
		func() { f.left(room, c[3], rooms.ReasonDropped, ts(19, 0, 25)) },
		func() { f.media(room, c4b, false, false, ts(19, 10, 0)) },
		func() { f.left(room, c[2], rooms.ReasonRemoved, ts(19, 15, 0)) },
		func() { f.media(room, c2b, true, false, ts(19, 40, 0)) },
		func() { f.left(room, c2b, rooms.ReasonLeft, ts(20, 30, 0)) },
		func() { f.ended(room, ts(21, 0, 0)) },
		func() { f.left(room, c[0], rooms.ReasonEnded, ts(21, 0, 1)) },
		func() { f.left(room, c4b, rooms.ReasonEnded, ts(21, 0, 1)) },
		func() { f.left(room, th, rooms.ReasonEnded, ts(21, 0, 2)) },
	}
	for i, ev := range script {
		ev()
		step(i)
	}
}

// runOutcome returns what a run produced that must not depend on faults: the
// billing CSV and each person's numbers for the week.
func runOutcome(t *testing.T, st *Store, program string) string {
	t.Helper()
	ctx := context.Background()
	var buf bytes.Buffer
	rows, err := st.WeekRows(ctx, program, Week{Year: 2026, Num: 44}) // without the head: programs differ
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteCSV(&buf, rows); err != nil {
		t.Fatal(err)
	}
	rep, err := st.ProgramWeek(ctx, program, Week{Year: 2026, Num: 44})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.People {
		fmt.Fprintf(&buf, "%s %d s %d video %d days %d billable\n", p.Sub, p.Seconds, p.VideoSeconds, p.Days, p.BillableDays)
	}
	r, err := st.Room(ctx, program, "eve-2026-10-27")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range r.People {
		fmt.Fprintf(&buf, "%s: %d segments, %d s\n", p.Sub, len(p.Segments), p.Seconds)
	}
	return buf.String()
}

// redisServer is a redis-server the test starts on a loopback port of
// its own, with an append-only file, and stops by its own PID.
type redisServer struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

func startRedisServer(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("IOP_TEST_REDIS_URL") != "" {
			t.Fatal("redis-server is not installed")
		}
		t.Skip("redis-server is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &redisServer{t: t, port: port, dir: t.TempDir()}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

func (s *redisServer) start() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", fmt.Sprint(s.port),
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", s.dir)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.addr()})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			s.t.Fatal("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the server (SIGTERM, so that it finishes its append-only file)
// and waits for it to exit.
func (s *redisServer) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// TestRedisOutage is acceptance 4 at the package's level: Redis stops for
// a few seconds while a session's events flow and starts again; nothing
// blocks, the events wait in the spool, and the totals equal those of a
// run without the outage.
func TestRedisOutage(t *testing.T) {
	ny := newYork(t)
	srv := startRedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	clk := &clock{now: at(ny, 2026, 10, 27, 17, 50, 0)}
	st := New(rdb, Options{Now: clk.Now})
	ctx := context.Background()
	for _, p := range []string{"calm", "outage"} {
		if err := st.SetProgramZone(ctx, p, "America/New_York"); err != nil {
			t.Fatal(err)
		}
	}

	calm := newRecorder(t, st, "calm", clk)
	evening(feed{calm, "calm"}, ny, func(int) {})
	flush(t, calm)

	rec := newRecorder(t, st, "outage", clk)
	evening(feed{rec, "outage"}, ny, func(i int) {
		switch i {
		case 5: // after the four clients are in: Redis goes away
			flush(t, rec)
			srv.stop()
		case 12: // back after a few seconds of events
			if s := rec.Stats(); s.Spooled == 0 || !s.Down {
				t.Errorf("during the outage the recorder reports %+v, want spooled events", s)
			}
			srv.start()
		default:
			if i > 5 && i < 12 {
				time.Sleep(400 * time.Millisecond) // events keep flowing while Redis is down
			}
		}
	})
	flush(t, rec)
	if s := rec.Stats(); s.Spooled != 0 || s.Down {
		t.Errorf("after Redis returned the recorder reports %+v", s)
	}
	clk.Set(at(ny, 2026, 10, 28, 9, 0, 0))
	want, got := runOutcome(t, st, "calm"), runOutcome(t, st, "outage")
	if got != want {
		t.Errorf("totals after an outage differ from a calm run:\n--- calm\n%s--- outage\n%s", want, got)
	}
	if !strings.Contains(want, "c2: 1 segments, 8900 s") { // 18:01:00-20:30:00 (8940 s) less 40 s
		t.Errorf("the calm run itself is off:\n%s", want)
	}
	for _, p := range []string{"calm", "outage"} {
		if v, err := st.Verify(ctx, p); err != nil || !v.OK {
			t.Errorf("%s chain: %+v %v", p, v, err)
		}
	}
}

// TestSpoolSurvivesRestart: a node that stops while Redis is away keeps its
// events in the spool file; the next process replays them, once.
func TestSpoolSurvivesRestart(t *testing.T) {
	ny := newYork(t)
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	clk := &clock{now: at(ny, 2026, 10, 27, 21, 30, 0)}
	st := New(rdb, Options{Now: clk.Now, Zone: ny})
	spool := filepath.Join(t.TempDir(), "spool")
	opts := RecorderOptions{
		Node: "n1", Spool: spool, Heartbeat: time.Hour, StaleAfter: -1, Retry: 20 * time.Millisecond, Now: clk.Now,
	}
	rec, err := NewRecorder(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	f := feed{rec, "p"}
	ts := func(hh, mm int) time.Time { return at(ny, 2026, 10, 27, hh, mm, 0) }
	c1 := person("p1", "c1", rooms.RoleClient)
	f.joined("r", c1, ts(18, 0))
	flush(t, rec)
	m.Close() // Redis goes away
	f.media("r", c1, true, false, ts(18, 30))
	f.left("r", c1, rooms.ReasonLeft, ts(19, 0))
	err = rec.Close()
	if err == nil || !strings.Contains(err.Error(), "2 events left") {
		t.Fatalf("Close with Redis away: %v, want 2 events left in the spool", err)
	}
	lines, _ := os.ReadFile(spool)
	var e Event
	if n := bytes.Count(lines, []byte("\n")); n != 2 || json.Unmarshal(bytes.SplitN(lines, []byte("\n"), 2)[0], &e) != nil || e.Kind != KindMedia {
		t.Fatalf("spool holds %q, want the media change and the leave as JSON lines", lines)
	}

	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	rec2, err := NewRecorder(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	flush(t, rec2)
	if err := rec2.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := st.Room(context.Background(), "p", "r")
	if err != nil {
		t.Fatal(err)
	}
	p := findPerson(t, r, "c1")
	if len(p.Segments) != 1 || p.Seconds != 3600 || p.VideoSeconds != 1800 || p.Segments[0].End == nil {
		t.Errorf("after the replay c1 has %+v, want one closed hour, half on camera", p)
	}
	if fi, _ := os.Stat(spool); fi.Size() != 0 {
		t.Errorf("the spool still holds %d bytes after the replay", fi.Size())
	}
}

// TestRecorderRevivesSweptSegments: a sweeper closed this node's segment as
// lost while the node could not report (here: a sweep with a far
// threshold); the next heartbeat finds it closed and revives it, and the
// time in between counts.
func TestRecorderRevivesSweptSegments(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	st, program, clk := newStore(t, Options{})
	t0 := at(ny, 2026, 10, 27, 18, 0, 0)
	clk.Set(t0)
	rec, err := NewRecorder(st, RecorderOptions{
		Node: "n1", Spool: filepath.Join(t.TempDir(), "spool"), Heartbeat: 10 * time.Millisecond, StaleAfter: -1, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	f := feed{rec, program}
	c1 := person("p1", "c1", rooms.RoleClient)
	f.joined("r", c1, t0)
	flush(t, rec)
	if n, err := st.SweepStale(ctx, program, t0.Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("sweep closed %d (%v), want 1", n, err)
	}
	clk.Set(t0.Add(30 * time.Second))
	deadline := time.Now().Add(10 * time.Second)
	for {
		open, _ := st.OpenSegments(ctx, program)
		if len(open) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the recorder's heartbeat did not revive its swept segment")
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.left("r", c1, rooms.ReasonLeft, t0.Add(100*time.Second))
	flush(t, rec)
	r, _ := st.Room(ctx, program, "r")
	if p := findPerson(t, r, "c1"); len(p.Segments) != 1 || p.Seconds != 100 || p.Segments[0].Reason != "left" {
		t.Errorf("c1: %+v, want one segment of 100 s that left", p)
	}
}

// TestRecorderWithRooms listens to a real rooms.Manager: the waiting room
// does not count, admission opens a segment with the role, and leaving
// closes it.
func TestRecorderWithRooms(t *testing.T) {
	rdb := openRedis(t)
	program := testProgram(t, rdb)
	st := New(rdb, Options{})
	rec, err := NewRecorder(st, RecorderOptions{
		Node: "n1", Spool: filepath.Join(t.TempDir(), "spool"), Heartbeat: time.Hour, StaleAfter: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	m := rooms.NewManager(nil, rec)
	room := m.Open(rooms.Ref{Program: program, ID: "grp-1"}, rooms.KindGroup, "Group", false)
	th := person("t", "th1", rooms.RoleTherapist)
	cl := person("c", "c1", rooms.RoleClient)
	if _, err := room.Join(th, &nopListener{}, rooms.JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFrom := time.Now()
	if admitted, err := room.Join(cl, &nopListener{}, rooms.JoinOptions{}); err != nil || admitted {
		t.Fatalf("client join: admitted %v, %v; want waiting", admitted, err)
	}
	time.Sleep(1100 * time.Millisecond) // a second in the waiting room
	if err := room.Admit("t", "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := room.Update("c", func(p *rooms.Participant) { p.Video = false }); err != nil {
		t.Fatal(err)
	}
	room.Leave("c", rooms.ReasonLeft)
	room.Leave("t", rooms.ReasonLeft)
	flush(t, rec)
	r, err := st.Room(context.Background(), program, "grp-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.People) != 2 || r.Room.Kind != rooms.KindGroup {
		t.Fatalf("roster %+v, want the therapist and the client", r)
	}
	c := findPerson(t, r, "c1")
	s := c.Segments[0]
	if c.Role != rooms.RoleClient || s.End == nil || s.Start.Before(waitFrom.Truncate(time.Second).Add(time.Second)) {
		t.Errorf("client segment %+v (role %s): want closed, starting at admission, not while waiting from %v", s, c.Role, waitFrom)
	}
	if open, _ := st.OpenSegments(context.Background(), program); len(open) != 0 {
		t.Errorf("segments still open: %v", open)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rec.Flush(context.Background()); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("Flush after Close: %v, want an error", err)
	}
}

type nopListener struct{}

func (nopListener) RoomEvent(rooms.Event) {}

// TestRecorderUpAtHeartbeat (issue 18, finding 4): Redis goes away while a
// segment is open and comes back while nothing happens in the room; the
// recorder reports Redis down, then back at its next successful
// heartbeat, not only at the next room event.
func TestRecorderUpAtHeartbeat(t *testing.T) {
	ny := newYork(t)
	srv := startRedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	t0 := at(ny, 2026, 10, 27, 18, 0, 0)
	clk := &clock{now: t0}
	st := New(rdb, Options{Now: clk.Now})
	program := "quiet"
	if err := st.SetProgramZone(context.Background(), program, "America/New_York"); err != nil {
		t.Fatal(err)
	}
	rec, err := NewRecorder(st, RecorderOptions{
		Node: "n1", Spool: filepath.Join(t.TempDir(), "spool"), Heartbeat: 20 * time.Millisecond, StaleAfter: -1,
		Timeout: 200 * time.Millisecond, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	feed{rec, program}.joined("r", person("p1", "c1", rooms.RoleClient), t0)
	flush(t, rec)
	waitStats := func(what string, ok func(RecorderStats) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !ok(rec.Stats()) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the recorder reports %+v", what, rec.Stats())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	srv.stop()
	waitStats("Redis stopped", func(s RecorderStats) bool { return s.Down })
	srv.start()
	waitStats("Redis back, no room event since", func(s RecorderStats) bool { return !s.Down })
}
