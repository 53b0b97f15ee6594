package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"iop/rooms"
	"iop/signaling/protocol"
)

// TestChat: messages reach everyone admitted, private ones only the
// therapists and the sender; waiting people cannot chat; the host turns
// chat off for clients and removes a message for everyone; bad and fast
// messages get their errors with the socket open; nothing of a message is
// stored in Redis or logged.
func TestChat(t *testing.T) {
	url := sharedRedis(t)
	n := testNode(t, withRedis(url))
	example, _ := tenants()
	room := uniqueRoom("chat")
	host := rawJoin(t, n, programToken(t, n, example, "t-host", "Dana", rooms.RoleTherapist, room))
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeAutoAdmit, AutoAdmit: ptr(true)}); got != "" {
		t.Fatal(got)
	}
	alex := rawJoin(t, n, programToken(t, n, example, "c-1", "Alex", rooms.RoleClient, room))
	sam := rawJoin(t, n, programToken(t, n, example, "c-2", "Sam", rooms.RoleClient, room))
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeAutoAdmit, AutoAdmit: ptr(false)}); got != "" {
		t.Fatal(got)
	}
	code, waiting := joinCode(t, n, programToken(t, n, example, "c-3", "Kim", rooms.RoleClient, room))
	if code != protocol.TypeWaiting {
		t.Fatal(code)
	}
	_ = waiting.Send(protocol.ClientMessage{Type: protocol.TypeChat, Text: "hello " + chatCanary, ID: "w"})
	expectError(t, waiting, protocol.CodeNotAdmitted)

	text := "I had a hard week <b>" + chatCanary + "</b>"
	if err := alex.c.Send(protocol.ClientMessage{Type: protocol.TypeChat, Text: text}); err != nil {
		t.Fatal(err)
	}
	var id string
	for _, s := range []rawSession{host, alex, sam} {
		m := waitType(t, s.c, protocol.TypeChat)
		if m.Text != text || m.From == nil || m.From.ID != alex.id || m.From.Name != "Alex" || m.Private || m.MessageID == "" || m.At.IsZero() {
			t.Errorf("%s got %+v", s.id, m)
		}
		id = m.MessageID
	}
	if err := sam.c.Send(protocol.ClientMessage{Type: protocol.TypeChat, Text: "only for Dana " + chatCanary, Private: true}); err != nil {
		t.Fatal(err)
	}
	if m := waitType(t, host.c, protocol.TypeChat); !m.Private || m.From.ID != sam.id {
		t.Errorf("the therapist got %+v, want Sam's private message", m)
	}
	if m := waitType(t, sam.c, protocol.TypeChat); !m.Private {
		t.Errorf("the sender's own copy %+v", m)
	}
	for _, m := range pingDrain(t, alex) {
		if m.Type == protocol.TypeChat && m.Private {
			t.Errorf("another client got a private message: %+v", m)
		}
	}
	if got := alex.ask(t, protocol.ClientMessage{Type: protocol.TypeChatRemove, MessageID: id}); got != protocol.CodeForbidden {
		t.Errorf("a client removing a message: %q", got)
	}
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeChatRemove, MessageID: id}); got != "" {
		t.Fatal(got)
	}
	for _, s := range []rawSession{alex, sam} {
		if m := waitType(t, s.c, protocol.TypeChatRemoved); m.MessageID != id {
			t.Errorf("%s: chat_removed %+v", s.id, m)
		}
	}
	for what, m := range map[string]protocol.ClientMessage{
		"empty":     {Type: protocol.TypeChat, Text: "   "},
		"too long":  {Type: protocol.TypeChat, Text: strings.Repeat("é", 1001)},
		"a control": {Type: protocol.TypeChat, Text: "bell\a"},
	} {
		if got := alex.ask(t, m); got != protocol.CodeBadMessage {
			t.Errorf("%s: %q, want bad_message", what, got)
		}
	}
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeChatEnabled, ChatEnabled: ptr(false)}); got != "" {
		t.Fatal(got)
	}
	if m := waitType(t, alex.c, protocol.TypeRoomUpdated); m.Room.Chat {
		t.Errorf("room_updated after chat off: %+v", m.Room)
	}
	if got := alex.ask(t, protocol.ClientMessage{Type: protocol.TypeChat, Text: "hi"}); got != protocol.CodeChatOff {
		t.Errorf("a client's chat while chat is off: %q, want chat_off", got)
	}
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeChat, Text: "the therapist still can " + chatCanary}); got != "" {
		t.Errorf("the therapist's chat while chat is off: %q", got)
	}
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeChatEnabled, ChatEnabled: ptr(true)}); got != "" {
		t.Fatal(got)
	}
	slowed := false
	for i := 0; i < 10 && !slowed; i++ {
		slowed = sam.ask(t, protocol.ClientMessage{Type: protocol.TypeChat, Text: "spam " + chatCanary}) == protocol.CodeSlowDown
	}
	if !slowed {
		t.Error("ten messages at once were never slowed down")
	}
	pingDrain(t, sam) // the socket stays open

	// Nothing of a message is stored.
	rdb := redis.NewClient(mustParseRedis(t, url))
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, "*", 500).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		var blob string
		switch rdb.Type(ctx, key).Val() {
		case "string":
			blob = rdb.Get(ctx, key).Val()
		case "hash":
			blob = strings.Join(rdb.HVals(ctx, key).Val(), " ")
		case "stream":
			for _, x := range rdb.XRange(ctx, key, "-", "+").Val() {
				for _, v := range x.Values {
					s, _ := v.(string)
					blob += s
				}
			}
		}
		if strings.Contains(blob, chatCanary) {
			t.Errorf("a chat message is stored in Redis under %s", key)
		}
	}
}

// pingDrain returns what s received until the answer to a ping sent now.
func pingDrain(t *testing.T, s rawSession) []protocol.ServerMessage {
	t.Helper()
	id := "drain-" + randomHex(3)
	if err := s.c.Send(protocol.ClientMessage{Type: protocol.TypePing, ID: id}); err != nil {
		t.Fatal(err)
	}
	var out []protocol.ServerMessage
	for {
		m, err := s.c.Read(time.Now().Add(10 * time.Second))
		if err != nil {
			t.Fatalf("waiting for pong: %v", err)
		}
		if m.Type == protocol.TypePong && m.Re == id {
			return out
		}
		out = append(out, m)
	}
}
