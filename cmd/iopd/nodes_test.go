package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gorilla/websocket"

	"iop/rooms"
	"iop/rooms/store"
	"iop/signaling/client"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// testSecret is the HS256 key of every node a test starts (testNode's too).
const testSecret = "test-secret-test-secret-test-secret-0123"

// sharedRedis returns the URL of a Redis that several nodes of one test
// share: IOP_TEST_REDIS_URL when set (CI: a real redis-server), otherwise a
// miniredis started for this test, whose TTLs run on the wall clock as a
// real Redis's do. Other processes reach it over TCP.
func sharedRedis(t *testing.T) string {
	t.Helper()
	if url := os.Getenv("IOP_TEST_REDIS_URL"); url != "" {
		return url
	}
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		t.Fatalf("start miniredis: %v", err)
	}
	m.ClockTTL(true)
	t.Cleanup(m.Close)
	return "redis://" + m.Addr()
}

func withRedis(url string) func(*config) {
	return func(c *config) { c.RedisURL = url }
}

// raceResult is where one racing client ended up.
type raceResult struct {
	answer    string // waiting or room_full
	conn      *client.Conn
	node      string // base URL of the node that answered
	redirects int
	err       error
}

// raceJoin joins a client through base, following redirects, and reports
// where it ended. It runs on its own goroutine and never calls t.
func raceJoin(base, tok string) raceResult {
	r := raceResult{}
	for ; r.redirects <= 2; r.redirects++ {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		c, m, err := knockErr(ctx, base, tok)
		cancel()
		if err != nil {
			r.err = fmt.Errorf("through %s: %w", base, err)
			return r
		}
		switch {
		case m.Type == protocol.TypeRedirect:
			_ = c.Close()
			if m.URL == "" || m.URL == base {
				r.err = fmt.Errorf("%s redirects to %q", base, m.URL)
				return r
			}
			base = m.URL
			continue
		case m.Type == protocol.TypeWaiting:
			r.answer, r.conn, r.node = m.Type, c, base
			return r
		case m.Type == protocol.TypeError && m.Code == protocol.CodeRoomFull:
			r.answer, r.node = m.Code, base
			_, err := c.Read(time.Now().Add(10 * time.Second))
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
				r.err = fmt.Errorf("room_full, then %v instead of the socket closing", err)
			}
			_ = c.Close()
			return r
		default:
			_ = c.Close()
			r.err = fmt.Errorf("through %s: join answered with %s", base, describe(m))
			return r
		}
	}
	r.err = fmt.Errorf("still redirected after %d hops, now to %s", r.redirects, base)
	return r
}

// TestNodesSeatRace: 30 clients rush into one 15-seat group through two
// nodes sharing one Redis. The room lives on one node (the other redirects),
// exactly 15 get a seat and 15 are told room_full; 20 times in a row.
func TestNodesSeatRace(t *testing.T) {
	t.Parallel()
	url := sharedRedis(t)
	nodes := []*node{testNode(t, withRedis(url)), testNode(t, withRedis(url))}
	const clients, seats, rounds = 30, 15, 20

	for round := 1; round <= rounds; round++ {
		room := uniqueRoom(fmt.Sprintf("race-%02d", round))
		// The therapist opens the room (settling its kind and its cap) on
		// either node; then the clients rush in through both.
		ther, m := knock(t, nodes[round%2].url, mintJoin(t, nodes[0].minter, "race-therapist", rooms.RoleTherapist, room, rooms.KindGroup))
		expectAnswer(t, "therapist", m, protocol.TypeJoined)
		toks := make([]string, clients)
		for i := range toks {
			toks[i] = mintJoin(t, nodes[0].minter, fmt.Sprintf("race-client-%02d", i), rooms.RoleClient, room, "")
		}
		results := make([]raceResult, clients)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i] = raceJoin(nodes[i%2].url, toks[i])
			}()
		}
		close(start)
		wg.Wait()

		waiting, full, redirected := 0, 0, 0
		homes := map[string]int{}
		var problems []string
		closeAll := func() {
			_ = ther.Close()
			for _, r := range results {
				if r.conn != nil {
					_ = r.conn.Close()
				}
			}
		}
		t.Cleanup(closeAll)
		for i, r := range results {
			if r.err != nil {
				problems = append(problems, fmt.Sprintf("client %d: %v", i, r.err))
				continue
			}
			if r.redirects > 1 {
				problems = append(problems, fmt.Sprintf("client %d was redirected %d times", i, r.redirects))
			}
			redirected += r.redirects
			homes[r.node]++
			switch r.answer {
			case protocol.TypeWaiting:
				waiting++
			case protocol.CodeRoomFull:
				full++
			}
		}
		if len(problems) > 0 {
			t.Fatalf("round %d: %s", round, strings.Join(problems, "; "))
		}
		if waiting != seats || full != clients-seats {
			t.Fatalf("round %d: %d clients seated and %d told room_full, want %d and %d", round, waiting, full, seats, clients-seats)
		}
		if len(homes) != 1 {
			t.Fatalf("round %d: the room answered on several nodes: %v", round, homes)
		}
		var owner, other *node
		for _, n := range nodes {
			if homes[n.url] > 0 {
				owner = n
			} else {
				other = n
			}
		}
		if owner == nil || other == nil {
			t.Fatalf("round %d: clients ended at %v, which is not one of the nodes", round, homes)
		}
		if got := len(seated(t, owner.store, demoRef(room).String(), rooms.RoleClient)); got != seats {
			t.Fatalf("round %d: %d seats taken in Redis, want %d", round, got, seats)
		}
		if r := owner.rooms.Get(demoRef(room)); r == nil || len(r.WaitingList()) != seats {
			t.Fatalf("round %d: the owner does not hold %d waiting clients", round, seats)
		}
		if other.rooms.Get(demoRef(room)) != nil {
			t.Fatalf("round %d: the node that redirects opened the room too", round)
		}
		closeAll()
		if round == 1 || testing.Verbose() {
			t.Logf("round %d: 15 seated, 15 room_full, %d redirects", round, redirected)
		}
	}
}

// iopdProcess is a real iopd binary running in a child process.
type iopdProcess struct {
	url  string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{} // closed when the process has exited
}

// buildIopd builds the iopd binary once per test.
func buildIopd(t *testing.T) string { return buildCommand(t, "iopd") }

// buildCommand builds ./cmd/name into the test's temporary directory.
func buildCommand(t *testing.T, name string) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	bin := filepath.Join(t.TempDir(), name)
	build := exec.Command("go", "build", "-o", bin, "./cmd/"+name)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, out)
	}
	return bin
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// startIopd runs the iopd binary as a node on a free loopback port with the
// shared Redis, waits until /healthz answers, and kills it when the test ends.
func startIopd(t *testing.T, bin, redisURL string, env ...string) *iopdProcess {
	t.Helper()
	for attempt := 1; attempt <= 3; attempt++ {
		port := freePort(t)
		if p := startIopdAt(t, bin, redisURL, port, env...); p != nil {
			return p
		}
		t.Logf("iopd did not come up on port %s (attempt %d)", port, attempt)
	}
	t.Fatal("iopd did not come up")
	return nil
}

// startIopdAt starts iopd on port with env added to its environment, and
// returns it once healthy (nil, with its output logged, if it is not).
func startIopdAt(t *testing.T, bin, redisURL, port string, env ...string) *iopdProcess {
	t.Helper()
	p := &iopdProcess{url: "http://127.0.0.1:" + port, out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IOP_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env,
		"IOP_HTTP_ADDR=127.0.0.1:"+port,
		"IOP_PUBLIC_URL="+p.url,
		"IOP_UDP_HOST=127.0.0.1",
		"IOP_UDP_PORT=0",
		"IOP_JWT_SECRET="+testSecret,
		"IOP_REDIS_URL="+redisURL,
		"IOP_DATA_DIR="+t.TempDir(),
		"IOP_JOIN_RATE=100000", "IOP_JOIN_BURST=100000", "IOP_UNJOINED_PER_ADDR=100000",
	)
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start iopd: %v", err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("iopd at %s (pid %d) said:\n%s", p.url, p.cmd.Process.Pid, p.out.String())
		}
	})
	if p.healthy(20 * time.Second) {
		return p
	}
	p.kill()
	t.Logf("iopd on port %s said:\n%s", port, p.out.String())
	return nil
}

// healthy waits until the node answers /healthz, or gives up when it exits.
func (p *iopdProcess) healthy(timeout time.Duration) bool {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return false
		default:
		}
		if resp, err := hc.Get(p.url + "/healthz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// kill stops the process at once with SIGKILL, by its own PID, as a
// crashed machine or an OOM kill would, and waits until it has exited.
func (p *iopdProcess) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// lockedBuffer collects a child process's output for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(b)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestNodesKill: the node holding a full room dies (SIGKILL). Within 30 s
// its seats are free and its room claim has lapsed, so the room reopens on
// the other node with a working call and a full set of seats; a client that
// reaches a node not holding the room is redirected and its media flows.
func TestNodesKill(t *testing.T) {
	t.Parallel()
	bin := buildIopd(t)
	redisURL := sharedRedis(t)
	st, err := store.Open(context.Background(), redisURL)
	if err != nil {
		t.Fatalf("open Redis: %v", err)
	}
	t.Cleanup(st.Close)
	a := startIopd(t, bin, redisURL)
	b := startIopd(t, bin, redisURL)
	minter := token.NewMinter(token.Config{Secret: []byte(testSecret), Audience: token.DefaultAudience})
	room := uniqueRoom("kill")
	tok := func(sub string, role rooms.Role) string { return mintJoin(t, minter, sub, role, room, "") }

	// Node A holds the room: a therapist and 15 waiting clients.
	_, m := knock(t, a.url, tok("therapist-a", rooms.RoleTherapist))
	expectAnswer(t, "therapist on A", m, protocol.TypeJoined)
	for i := 1; i <= 15; i++ {
		who := fmt.Sprintf("client-a%02d", i)
		_, m := knock(t, a.url, tok(who, rooms.RoleClient))
		expectAnswer(t, who, m, protocol.TypeWaiting)
	}
	_, m = knock(t, b.url, tok("client-b-early", rooms.RoleClient))
	if m.Type != protocol.TypeRedirect || m.URL != a.url {
		t.Fatalf("a join through B while A holds the room: %s, want redirect to %s", describe(m), a.url)
	}
	if got := seated(t, st, demoRef(room).String(), rooms.RoleClient); len(got) != 15 {
		t.Fatalf("%d seats held on A, want 15: %v", len(got), got)
	}

	a.kill()
	killed := time.Now()
	// The seats outlive the process for a while (nobody released them)...
	if got := seated(t, st, demoRef(room).String(), rooms.RoleClient); len(got) != 15 {
		t.Fatalf("%d seats held right after A died, want all 15 until their leases lapse", len(got))
	}
	// ...and lapse within 30 s.
	eventually(t, 30*time.Second-time.Since(killed), "the dead node's seats are freed", func() (bool, string) {
		got := seated(t, st, demoRef(room).String(), rooms.RoleClient)
		return len(got) == 0, fmt.Sprintf("%d seats still held", len(got))
	})
	t.Logf("seats free %.1f s after the kill", time.Since(killed).Seconds())

	// The room reopens on B once A's claim has lapsed; until then B
	// redirects to the dead node.
	var th *client.Participant
	eventually(t, 30*time.Second-time.Since(killed), "the room reopens on B", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		p, err := client.Join(ctx, b.url, tok("therapist-b", rooms.RoleTherapist), client.Options{})
		var rd *client.ErrRedirect
		if errors.As(err, &rd) {
			if rd.URL != a.url {
				t.Fatalf("B redirects to %s, want the dead node %s or none", rd.URL, a.url)
			}
			time.Sleep(200 * time.Millisecond)
			return false, "B still redirects to the dead node"
		}
		if err != nil {
			t.Fatalf("therapist joins through B: %v", err)
		}
		th = p
		return true, ""
	})
	t.Cleanup(th.Close)
	t.Logf("room reopened on B %.1f s after the kill", time.Since(killed).Seconds())
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := th.WaitPublishing(ctx); err != nil {
		t.Fatal(err)
	}

	// Clients take the seats again on B, and media flows.
	joinVia := func(base, sub string) func(context.Context) (*client.Participant, error) {
		tk := tok(sub, rooms.RoleClient)
		return func(ctx context.Context) (*client.Participant, error) {
			return client.Join(ctx, base, tk, client.Options{})
		}
	}
	c1 := joinAdmitted(t, th, "client-b01", joinVia(b.url, "client-b01"))
	for i := 2; i <= 14; i++ {
		who := fmt.Sprintf("client-b%02d", i)
		_, m := knock(t, b.url, tok(who, rooms.RoleClient))
		expectAnswer(t, who, m, protocol.TypeWaiting)
	}
	eventually(t, 20*time.Second, "media between therapist and client on B", func() (bool, string) {
		ok1, s1 := receivesFrom(th, 20, c1)
		ok2, s2 := receivesFrom(c1, 20, th)
		return ok1 && ok2, s1 + "; " + s2
	})

	// A comes back; a client who reaches it is sent to B and joins there.
	a2 := startIopd(t, bin, redisURL)
	redirectedTo := ""
	c2tok := tok("client-b15", rooms.RoleClient)
	c2 := joinAdmitted(t, th, "client-b15", func(ctx context.Context) (*client.Participant, error) {
		p, err := client.Join(ctx, a2.url, c2tok, client.Options{})
		var rd *client.ErrRedirect
		if !errors.As(err, &rd) {
			if p != nil {
				p.Close()
			}
			return nil, fmt.Errorf("join through the restarted node, which does not hold the room: %v, want a redirect", err)
		}
		redirectedTo = rd.URL
		return client.Join(ctx, rd.URL, c2tok, client.Options{})
	})
	if redirectedTo != b.url {
		t.Errorf("the restarted node redirects to %s, want %s", redirectedTo, b.url)
	}
	eventually(t, 20*time.Second, "the redirected client's media flows", func() (bool, string) {
		ok1, s1 := receivesFrom(c2, 20, th, c1)
		ok2, s2 := receivesFrom(th, 20, c2)
		ok3, s3 := receivesFrom(c1, 20, c2)
		return ok1 && ok2 && ok3, strings.Join([]string{s1, s2, s3}, "; ")
	})

	// All 15 seats are B's now: the next client is refused.
	c, m := knock(t, b.url, tok("client-b16", rooms.RoleClient))
	expectRefused(t, "a 16th client on B", c, m, protocol.CodeRoomFull)
	if got := seated(t, st, demoRef(room).String(), rooms.RoleClient); len(got) != 15 || strings.Contains(strings.Join(got, ","), "client-a") {
		t.Errorf("seats after reopening on B: %v, want client-b01..client-b15", got)
	}
}
