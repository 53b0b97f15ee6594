// Command iopd is the telehealth session server: the web client, the
// signaling websocket and the SFU on one HTTP port plus one UDP port.
//
// With no configuration it runs in dev mode on 127.0.0.1:8080 with an
// embedded Redis and prints join links for a demo group.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"
	_ "time/tzdata" // time zones work on minimal images

	"github.com/redis/go-redis/v9"

	"iop/rooms"
)

func main() {
	// The garbage collector runs when the heap has grown by half since the
	// last collection, not doubled (Go's default): iopd's live heap is a
	// few MB per participant and its forwarding path allocates nothing, so
	// collecting twice as often costs little CPU and keeps about a sixth of
	// the memory per participant (docs/performance.md, "Toward the relay").
	// GOGC set in the environment wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "iopd:", err)
		os.Exit(1)
	}
}

// run starts a node and serves until ctx ends or SIGINT/SIGTERM arrives, then drains.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	redis.SetLogger(redisLog{log}) // the Redis client's complaints go to the JSON log too
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	n, err := startNode(ctx, cfg, log)
	if err != nil {
		return err
	}
	if cfg.dev() {
		if err := printDevLinks(stdout, n); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "iopd is serving on %s\n", n.url)
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for done := false; !done; {
		select {
		case <-hup:
			n.ReloadKeys()
		case <-ctx.Done():
			done = true
		}
	}
	log.Info("shutting down: closing sessions")
	drain, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return n.Close(drain)
}

// redisLog routes the Redis client's own messages (reconnects during an
// outage) into the structured log, at warning level.
type redisLog struct{ log *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.log.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}

// printDevLinks writes join links for the demo room to stdout (never to the
// log: they carry tokens).
func printDevLinks(w io.Writer, n *node) error {
	people := []struct {
		sub, name string
		role      rooms.Role
	}{
		{"demo-therapist", "Therapist Dana", rooms.RoleTherapist},
		{"demo-client-1", "Alex", rooms.RoleClient},
		{"demo-client-2", "Sam", rooms.RoleClient},
		{"demo-client-3", "Jordan", rooms.RoleClient},
	}
	fmt.Fprintf(w, "\niopd dev mode: demo group %q at %s\nOpen a link in a browser (one per tab or device); links are valid for 12 hours:\n\n", demoRoom, n.url)
	for _, p := range people {
		link, err := n.link(p.sub, p.name, p.role, 12*time.Hour)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %-9s %-15s %s\n", p.role, p.name, link)
	}
	staff, err := n.minter.Mint(tokenClaims("demo-staff", "Case manager", rooms.RoleStaff, "*"), 12*time.Hour)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n  attendance dashboard (staff): %s/staff#token=%s\n\n", n.url, staff)
	return nil
}
