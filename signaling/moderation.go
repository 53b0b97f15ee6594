package signaling

// This file holds a session's moderation, on the actor: the therapist's
// controls (admit, deny, mute, remove, lock, end, host, auto-admit, chat
// and screen rules, spotlight). The room's host rule decides who may do
// them to whom; this checks the message and asks the room.

import (
	"context"
	"time"

	"iop/rooms"
	"iop/signaling/protocol"
)

// revokeTimeout bounds recording a removal in Redis.
const revokeTimeout = 5 * time.Second

// moderate handles the therapist's controls; the room's host rule decides
// who may do them to whom.
func (s *session) moderate(m *protocol.ClientMessage) error {
	if !s.isAdmitted() {
		return errorf(protocol.CodeNotAdmitted, "you are in the waiting room")
	}
	switch m.Type {
	case protocol.TypeChatRemove:
		if m.MessageID == "" || len(m.MessageID) > 32 {
			return errorf(protocol.CodeBadMessage, "chat_remove needs message_id")
		}
		return s.room.RemoveChat(s.id, m.MessageID)
	case protocol.TypeChatEnabled:
		if m.ChatEnabled == nil {
			return errorf(protocol.CodeBadMessage, "chat_enabled needs chat_enabled true or false")
		}
		return s.room.SetChat(s.id, *m.ChatEnabled)
	case protocol.TypeScreenAllowed:
		if m.ScreenAllowed == nil {
			return errorf(protocol.CodeBadMessage, "screen_allowed needs screen_allowed true or false")
		}
		return s.room.SetScreenAllowed(s.id, *m.ScreenAllowed)
	case protocol.TypeSpotlight:
		return s.room.Spotlight(s.id, m.Participant) // "" ends the spotlight
	}
	needsTarget := m.Type != protocol.TypeLock && m.Type != protocol.TypeEnd && m.Type != protocol.TypeAutoAdmit
	if needsTarget && m.Participant == "" {
		return errorf(protocol.CodeBadMessage, m.Type+" needs participant")
	}
	switch m.Type {
	case protocol.TypeAdmit:
		return s.room.Admit(s.id, m.Participant)
	case protocol.TypeDeny:
		return s.room.Deny(s.id, m.Participant)
	case protocol.TypeMute:
		if m.Kind != "audio" && m.Kind != "video" {
			return errorf(protocol.CodeBadMessage, "mute needs kind audio or video")
		}
		return s.room.Mute(s.id, m.Participant, m.Kind)
	case protocol.TypeRemove:
		if len(m.Reason) > 500 {
			return errorf(protocol.CodeBadMessage, "reason too long")
		}
		// The removed person may not come back with this or a new token:
		// recorded before they are told, so that no rejoin slips in between.
		p, err := s.room.MayModerate(s.id, m.Participant, rooms.ActRemove)
		if err != nil {
			return err
		}
		if st := s.srv.cfg.Store; st != nil {
			ctx, cancel := context.WithTimeout(s.ctx, revokeTimeout)
			defer cancel()
			if err := st.RevokeFromRoom(ctx, s.room.Ref().String(), p.Sub, 0); err != nil {
				return err
			}
		}
		_, err = s.room.Remove(s.id, m.Participant, m.Reason)
		return err
	case protocol.TypeLock:
		if m.Locked == nil {
			return errorf(protocol.CodeBadMessage, "lock needs locked")
		}
		return s.room.SetLocked(s.id, *m.Locked)
	case protocol.TypeEnd:
		return s.room.End(s.id)
	case protocol.TypeHost:
		return s.room.HandOver(s.id, m.Participant)
	case protocol.TypeAutoAdmit:
		if m.AutoAdmit == nil {
			return errorf(protocol.CodeBadMessage, "auto_admit needs auto_admit true or false")
		}
		return s.room.SetAutoAdmit(s.id, *m.AutoAdmit)
	}
	return nil
}

// isAdmitted reports whether the participant is in the room, not waiting.
func (s *session) isAdmitted() bool { return s.admitted }
