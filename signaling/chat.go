package signaling

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"iop/signaling/protocol"
)

// Chat limits: plain text of at most maxChatRunes characters, a burst of
// chatBurst messages, then one every chatEvery. Over the rate the sender
// gets slow_down and the socket stays open.
const (
	maxChatRunes = 1000
	chatBurst    = 5
	chatEvery    = 2 * time.Second
)

// chat relays a chat message through the room. The server keeps nothing of
// it and never logs it: a chat in a therapy group is a health record if
// kept.
func (s *session) chat(m *protocol.ClientMessage) error {
	if !s.isAdmitted() {
		return errorf(protocol.CodeNotAdmitted, "you are in the waiting room")
	}
	text := strings.TrimSpace(m.Text)
	if err := checkChat(text); err != nil {
		return err
	}
	if !s.chats.Allow() {
		return errorf(protocol.CodeSlowDown, "too many messages; wait a moment before the next")
	}
	return s.room.Chat(s.id, text, m.Private)
}

// checkChat refuses an empty or long message and one with control
// characters other than line breaks and tabs, or with invalid UTF-8.
func checkChat(text string) error {
	switch {
	case text == "":
		return errorf(protocol.CodeBadMessage, "chat needs text")
	case !utf8.ValidString(text):
		return errorf(protocol.CodeBadMessage, "chat text must be UTF-8")
	case utf8.RuneCountInString(text) > maxChatRunes:
		return errorf(protocol.CodeBadMessage, "chat text is longer than 1000 characters")
	}
	for _, r := range text {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return errorf(protocol.CodeBadMessage, "chat text is plain text: no control characters")
		}
	}
	return nil
}
