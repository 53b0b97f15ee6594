package attendance

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"iop/rooms/civil"
)

// zone returns the program's time zone.
func (s *Store) zone(ctx context.Context, c redis.Cmdable, program string) (*time.Location, error) {
	name, err := c.Get(ctx, keysFor(program).zone).Result()
	if err == redis.Nil || name == "" {
		return s.opts.Zone, nil
	}
	if err != nil {
		return nil, err
	}
	return s.loadZone(name)
}

func (s *Store) loadZone(name string) (*time.Location, error) {
	if l, ok := s.zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := civil.LoadZone(name)
	if err != nil {
		return nil, fmt.Errorf("program time zone: %w", err)
	}
	s.zones.Store(name, l)
	return l, nil
}

// Zone returns a program's time zone: the one set with SetProgramZone, or
// Options.Zone.
func (s *Store) Zone(ctx context.Context, program string) (*time.Location, error) {
	return s.zone(ctx, s.rdb, program)
}

// SetProgramZone sets the IANA time zone (e.g. America/New_York) whose local
// days and ISO weeks a program's rollups use; "" returns to Options.Zone.
// Rollups already stored keep the days of the old zone until Rebuild.
func (s *Store) SetProgramZone(ctx context.Context, program, zone string) error {
	if zone != "" {
		if _, err := s.loadZone(zone); err != nil {
			return err
		}
	}
	if err := s.rdb.Set(ctx, keysFor(program).zone, zone, 0).Err(); err != nil {
		return fmt.Errorf("set program zone: %w", err)
	}
	return nil
}

// programTargets is the targets field of a program's default.
const programTargets = "*"

// SetTargets sets a client's weekly targets (hours between 6 and 19, days
// between 3 and 5 by default; ErrTargets otherwise). The zero Targets
// returns the client to the program's default.
func (s *Store) SetTargets(ctx context.Context, program, sub string, t Targets) error {
	return s.setTargets(ctx, program, sub, t)
}

// SetProgramTargets sets a program's default weekly targets (within the
// same ranges); the zero Targets returns it to Rules.Targets.
func (s *Store) SetProgramTargets(ctx context.Context, program string, t Targets) error {
	return s.setTargets(ctx, program, programTargets, t)
}

func (s *Store) setTargets(ctx context.Context, program, field string, t Targets) error {
	k := keysFor(program)
	if t == (Targets{}) {
		if err := s.rdb.HDel(ctx, k.targets, field).Err(); err != nil {
			return fmt.Errorf("clear targets: %w", err)
		}
		return nil
	}
	if err := s.opts.Rules.CheckTargets(t); err != nil {
		return err
	}
	b, _ := json.Marshal(t)
	if err := s.rdb.HSet(ctx, k.targets, field, b).Err(); err != nil {
		return fmt.Errorf("set targets: %w", err)
	}
	return nil
}

// TargetsOf returns a client's weekly targets: their own, else the
// program's, else Rules.Targets.
func (s *Store) TargetsOf(ctx context.Context, program, sub string) (Targets, error) {
	v, err := s.rdb.HMGet(ctx, keysFor(program).targets, sub, programTargets).Result()
	if err != nil {
		return Targets{}, fmt.Errorf("read targets: %w", err)
	}
	for _, x := range v {
		if str, ok := x.(string); ok {
			var t Targets
			if err := json.Unmarshal([]byte(str), &t); err == nil {
				return t, nil
			}
		}
	}
	return s.opts.Rules.Targets, nil
}
