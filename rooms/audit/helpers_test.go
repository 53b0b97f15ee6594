package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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

// storeForBench opens the Redis a benchmark runs against.
func storeForBench() (*store.Store, error) {
	return store.Open(context.Background(), os.Getenv("IOP_TEST_REDIS_URL"))
}

// testProgram returns a program id of its own for the test and removes its
// keys afterwards (tests may share a real Redis database).
func testProgram(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.Map(func(r rune) rune {
		if r < 0x80 && (r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return r
		}
		return '-'
	}, t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	p := "test-" + name + "-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		k := keysFor(p)
		rdb.Del(context.Background(), k.stream, k.head)
		rdb.SRem(context.Background(), programsKey, p)
	})
	return p
}

// readStream returns the program's stream as stored.
func readStream(t *testing.T, rdb *redis.Client, program string) []redis.XMessage {
	t.Helper()
	m, err := rdb.XRange(context.Background(), keysFor(program).stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// writeStream replaces the program's stream with msgs, keeping their ids:
// what someone with write access to Redis (and no key) could do.
func writeStream(t *testing.T, rdb *redis.Client, program string, msgs []redis.XMessage) {
	t.Helper()
	ctx := context.Background()
	k := keysFor(program).stream
	if err := rdb.Del(ctx, k).Err(); err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: k, ID: m.ID, Values: []any{
			"prev", m.Values["prev"], "hash", m.Values["hash"], "entry", m.Values["entry"],
		}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// appendN appends n entries about different people, as a node would.
func appendN(t *testing.T, l *Log, program string, n int) []Entry {
	t.Helper()
	var out []Entry
	for i := 0; i < n; i++ {
		e, err := l.Append(context.Background(), Entry{
			Program: program, Actor: "t-7", Role: "therapist", Action: ActionAdmit, Room: "eve-1",
			Subject: "c-" + string(rune('a'+i%26)), Addr: "192.0.2.10",
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}
