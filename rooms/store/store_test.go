package store

import (
	"context"
	"os"
	"testing"
	"time"
)

// openTest opens the Redis of IOP_TEST_REDIS_URL (CI: a real redis-server)
// or the embedded one.
func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), os.Getenv("IOP_TEST_REDIS_URL"))
	if err != nil {
		t.Fatalf("open Redis: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestOpenRefusesUnreachableRedis: a wrong address is an error at start,
// not a server that fails later.
func TestOpenRefusesUnreachableRedis(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Open(ctx, "redis://127.0.0.1:1/0"); err == nil {
		t.Fatal("Open succeeded against a port where nothing listens")
	}
	if _, err := Open(ctx, "http://not-redis"); err == nil {
		t.Fatal("Open accepted a URL that is not a Redis URL")
	}
}
