package main

import (
	"context"
	"io"
	"log/slog"
	"os"
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
	}
	cfg, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	for _, f := range tweak {
		f(cfg)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
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
	})
	return n
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
