package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"iop/rooms"
)

// testNode starts a real iopd in this process: HTTP on a free loopback port,
// media on a free loopback UDP port, Redis from IOP_TEST_REDIS_URL when set
// (CI) or embedded. It is stopped when the test ends.
func testNode(t testing.TB, tweak ...func(*config)) *node {
	t.Helper()
	env := map[string]string{
		"IOP_HTTP_ADDR":  "127.0.0.1:0",
		"IOP_UDP_HOST":   "127.0.0.1",
		"IOP_UDP_PORT":   "0",
		"IOP_REDIS_URL":  os.Getenv("IOP_TEST_REDIS_URL"),
		"IOP_JWT_SECRET": "test-secret-test-secret-test-secret-0123",
		// Every test client comes from 127.0.0.1: the per-address limits
		// are lifted here and tested by tests that set their own.
		"IOP_JOIN_RATE":           "100000",
		"IOP_JOIN_BURST":          "100000",
		"IOP_UNJOINED_PER_ADDR":   "100000",
		"IOP_HTTP_CONNS_PER_ADDR": "100000",
	}
	cfg, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.DataDir = t.TempDir()
	for _, f := range tweak {
		f(cfg)
	}
	if err := cfg.derive(); err != nil {
		t.Fatalf("config: %v", err)
	}
	sink := &logSink{}
	var out io.Writer = sink
	if testing.Verbose() {
		out = io.MultiWriter(sink, os.Stderr)
	}
	log := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, err := startNode(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("start iopd: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("stop iopd: %v", err)
		}
		sink.checkPrivate(t)
	})
	return n
}

// logSink keeps everything a test node logged, to check it for what must
// never be logged.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// chatCanary is in the chat messages of tests: chat is never logged.
const chatCanary = "chat-canary-7f3a"

// checkPrivate fails the test if a token (a JWT starts "eyJ"), SDP (with
// its addresses) or a chat message reached the log.
func (l *logSink) checkPrivate(t testing.TB) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, secret := range []string{"eyJ", "v=0", "a=candidate", "ice-pwd", chatCanary, "014-7391"} {
		if i := bytes.Index(l.buf.Bytes(), []byte(secret)); i >= 0 {
			line := l.buf.Bytes()[max(0, i-200):min(l.buf.Len(), i+100)]
			t.Errorf("the server logged %q: ...%s...", secret, line)
		}
	}
}

// joinToken mints a token for a person in room, valid for an hour.
func (n *node) joinToken(t testing.TB, sub, name string, role rooms.Role, room string) string {
	t.Helper()
	c := tokenClaims(sub, name, role, room)
	tok, err := n.minter.Mint(c, time.Hour)
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	return tok
}

// demoRef is a room of the program the tests' tokens are for.
func demoRef(room string) rooms.Ref { return rooms.Ref{Program: demoProgram, ID: room} }
