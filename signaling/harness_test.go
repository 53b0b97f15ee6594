package signaling

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"iop/rooms"
	"iop/rooms/store"
	"iop/sfu"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// house is a signaling server on real parts: the token verifier, a rooms
// manager, the media plane on a loopback port and the Redis of
// IOP_TEST_REDIS_URL (or the embedded one), behind a real websocket.
type house struct {
	t       *testing.T
	srv     *Server
	url     string
	minter  *token.Minter
	rooms   *rooms.Manager
	store   *store.Store
	program string
}

func newHouse(t *testing.T, tune func(*Config)) *house {
	t.Helper()
	secret := bytes.Repeat([]byte("s"), token.MinSecretLen)
	v, err := token.NewVerifier(token.Config{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), os.Getenv("IOP_TEST_REDIS_URL"))
	if err != nil {
		t.Fatalf("open Redis: %v", err)
	}
	t.Cleanup(st.Close)
	scfg := sfu.DefaultConfig()
	scfg.UDPAddr = "127.0.0.1:0"
	scfg.IncludeLoopback = true
	media, err := sfu.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = media.Close() })
	h := &house{t: t, minter: token.NewMinter(token.Config{Secret: secret}), store: st,
		rooms: rooms.NewManager(rooms.DefaultPolicies()), program: testProgram(t, st)}
	cfg := DefaultConfig()
	cfg.Verifier, cfg.Rooms, cfg.SFU, cfg.Store = v, h.rooms, media, st
	if tune != nil {
		tune(&cfg)
	}
	h.srv = New(cfg)
	hs := httptest.NewServer(h.srv)
	t.Cleanup(func() { h.srv.Close(); hs.Close() })
	h.url = "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/signal"
	return h
}

// testProgram is a program of the test's own; its Redis keys go afterwards
// (tests may share a database).
func testProgram(t *testing.T, st *store.Store) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	p := "sigtest-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := st.Redis.Keys(ctx, "*"+p+"*").Result()
		if len(keys) > 0 {
			st.Redis.Del(ctx, keys...)
		}
	})
	return p
}

// token mints a join token for sub with role in room of the house's program.
func (h *house) token(sub string, role rooms.Role, room string) string {
	return h.tokenIn(h.program, sub, role, room)
}

func (h *house) tokenIn(program, sub string, role rooms.Role, room string) string {
	h.t.Helper()
	tok, err := h.minter.Mint(token.Claims{Name: "Person " + sub, Role: role, Room: room, Program: program,
		RegisteredClaims: jwt.RegisteredClaims{Subject: sub}}, time.Hour)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// peer is one websocket to the house, as a client sees it.
type peer struct {
	t    *testing.T
	conn *websocket.Conn
}

func (h *house) dial() *peer {
	h.t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(h.url, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = c.Close() })
	return &peer{t: h.t, conn: c}
}

// join dials and joins with tok, and returns the peer and the first answer.
func (h *house) join(tok, room string) (*peer, protocol.ServerMessage) {
	h.t.Helper()
	p := h.dial()
	p.send(protocol.ClientMessage{Type: protocol.TypeJoin, ID: "j1", V: protocol.Version, Token: tok, Room: room})
	return p, p.next()
}

func (p *peer) send(m protocol.ClientMessage) {
	p.t.Helper()
	if err := p.conn.WriteJSON(m); err != nil {
		p.t.Fatal(err)
	}
}

// next reads the next message; it fails the test if none comes.
func (p *peer) next() protocol.ServerMessage {
	p.t.Helper()
	m, err := p.read()
	if err != nil {
		p.t.Fatalf("read: %v", err)
	}
	return m
}

func (p *peer) read() (protocol.ServerMessage, error) {
	var m protocol.ServerMessage
	_ = p.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := p.conn.ReadMessage()
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(data, &m)
}

// until reads messages up to the first of type typ and returns them all.
func (p *peer) until(typ string) []protocol.ServerMessage {
	p.t.Helper()
	var got []protocol.ServerMessage
	for {
		m := p.next()
		got = append(got, m)
		if m.Type == typ {
			return got
		}
	}
}

// closed waits for the server to close the socket and returns its close
// code (-1 when the connection ended without a close frame).
func (p *peer) closed() int {
	p.t.Helper()
	for {
		_, err := p.read()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if ok := asClose(err, &ce); ok {
			return ce.Code
		}
		if strings.Contains(err.Error(), "timeout") {
			p.t.Fatal("the server did not close the socket")
		}
		return -1
	}
}

func asClose(err error, ce **websocket.CloseError) bool {
	c, ok := err.(*websocket.CloseError)
	*ce = c
	return ok
}

// sessionOf returns the server's session of participant id.
func (h *house) sessionOf(id string) *session {
	h.t.Helper()
	h.srv.mu.Lock()
	defer h.srv.mu.Unlock()
	for s := range h.srv.sessions {
		if s.id == id {
			return s
		}
	}
	h.t.Fatalf("no session %s", id)
	return nil
}
