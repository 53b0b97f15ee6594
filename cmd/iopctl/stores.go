package main

// stores.go holds what the Redis-backed commands share: their flags and
// the deployment's stores they open.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"iop/rooms/attendance"
	"iop/rooms/chain"
	"iop/rooms/civil"
	"iop/rooms/schedule"
	"iop/rooms/store"
)

// The schedule and enrollment commands work on Redis directly (-redis or
// IOP_REDIS_URL), through the same calls as the staff API: every write is
// validated whole, and attendance is told the program's time zone and each
// client's weekly targets, as iopd does when staff change them.

// redisFlag adds the -redis flag, defaulting to IOP_REDIS_URL.
func redisFlag(cmd *command, getenv func(string) string) *string {
	return cmd.String("redis", getenv("IOP_REDIS_URL"), "Redis URL, e.g. redis://127.0.0.1:6379/0 [$IOP_REDIS_URL]")
}

// stores is what the Redis-backed commands work on.
type stores struct {
	st    *store.Store
	sched *schedule.Store
	att   *attendance.Store
}

// openStores connects to the deployment's Redis. An embedded Redis would
// be empty, so a URL is required.
func openStores(ctx context.Context, redisURL string, getenv func(string) string) (*stores, error) {
	if redisURL == "" {
		return nil, errors.New("no Redis: pass -redis URL or set IOP_REDIS_URL (the deployment's Redis)")
	}
	zone := time.UTC
	if z := getenv("IOP_TIMEZONE"); z != "" {
		loc, err := civil.LoadZone(z)
		if err != nil {
			return nil, fmt.Errorf("IOP_TIMEZONE: %w", err)
		}
		zone = loc
	}
	key, err := chain.ParseKey(getenv("IOP_ATTENDANCE_KEY"))
	if err != nil {
		return nil, fmt.Errorf("IOP_ATTENDANCE_KEY: %w", err)
	}
	oldKeys, err := chain.ParseKeys(getenv("IOP_ATTENDANCE_OLD_KEYS"))
	if err != nil {
		return nil, fmt.Errorf("IOP_ATTENDANCE_OLD_KEYS: %w", err)
	}
	st, err := store.Open(ctx, redisURL)
	if err != nil {
		return nil, err
	}
	sched := schedule.NewStore(st.Redis)
	att := attendance.New(st.Redis, schedule.AttendanceOptions(sched, attendance.Options{Zone: zone, Key: key, OldKeys: oldKeys}))
	return &stores{st: st, sched: sched, att: att}, nil
}

func (s *stores) Close() { s.st.Close() }

// withStores runs fn with the deployment's stores open, then closes them.
func withStores(redisURL string, getenv func(string) string, fn func(context.Context, *stores) error) error {
	ctx := context.Background()
	s, err := openStores(ctx, redisURL, getenv)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(ctx, s)
}
