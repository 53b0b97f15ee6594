package main

import (
	"bytes"
	"context"
	"errors"

	"iop/rooms/attendance"
	"iop/rooms/schedule"
)

// seedExample loads the example program (schedule.Example, built
// in) unless Redis has it already: staff edits are never overwritten.
func seedExample(ctx context.Context, s *schedule.Store, att *attendance.Store) error {
	if _, err := s.Program(ctx, "example"); !errors.Is(err, schedule.ErrNotFound) {
		return err
	}
	f, err := schedule.LoadYAML(bytes.NewReader(schedule.Example))
	if err != nil {
		return err
	}
	if err := s.Seed(ctx, f); err != nil {
		return err
	}
	return schedule.SyncAttendance(ctx, s, att, f.Program.ID)
}
