package signaling

import (
	"context"

	"iop/rooms"
	"iop/rooms/audit"
)

// record queues an entry of the audit trail for what g's bearer did; it
// never blocks. Names never go in: subs, the room and a code only.
func (s *Server) record(g rooms.Grant, action, room, subject, code, detail, addr string) {
	if s.cfg.Audit == nil || g.Program == "" {
		return
	}
	s.cfg.Audit.Record(audit.Entry{
		Program: g.Program, Actor: g.Sub, Role: string(g.Role), Action: action,
		Room: room, Subject: subject, Code: code, Detail: detail, Addr: addr,
	})
}

// recordNow writes an entry before the access it records goes ahead: a
// read or export of health records that cannot leave its trace does not
// happen.
func (s *Server) recordNow(ctx context.Context, g rooms.Grant, action, subject, detail, addr string) error {
	if s.cfg.Audit == nil {
		return nil
	}
	_, err := s.cfg.Audit.Append(ctx, audit.Entry{
		Program: g.Program, Actor: g.Sub, Role: string(g.Role), Action: action,
		Subject: subject, Detail: detail, Addr: addr,
	})
	return err
}
