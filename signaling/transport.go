package signaling

// This file holds a session's transport: the socket's reader, which hands
// each message to the actor and waits for it to be handled, and its writer,
// which drains the outgoing queue; the frames they carry, and closing. All
// of it is safe from any goroutine.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"time"

	"github.com/gorilla/websocket"

	"iop/rooms"
	"iop/signaling/protocol"
)

// outQueue is how many messages may wait for a slow client before the
// connection is dropped.
const outQueue = 512

// frame is one queued write: a text message, or a close frame that ends the
// connection after everything before it has been written.
type frame struct {
	data      []byte
	close     bool
	closeCode int
	closeText string
}

// abort ends the connection at once, from any goroutine.
func (s *session) abort() {
	s.abortOnce.Do(func() {
		close(s.stop)
		_ = s.conn.Close()
	})
}

func (s *session) writeLoop() {
	defer close(s.writerDone)
	ping := time.NewTicker(s.srv.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case f := <-s.out:
			deadline := time.Now().Add(s.srv.cfg.WriteTimeout)
			if f.close {
				_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(f.closeCode, f.closeText), deadline)
				if tc, ok := s.conn.NetConn().(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				// The reader ends when the client answers the close, or soon;
				// at once for a replaced socket, so that it leaves its room
				// before its person's next socket knocks.
				wait := 2 * time.Second
				if s.cut.Load() {
					wait = 0
				}
				_ = s.conn.NetConn().SetReadDeadline(time.Now().Add(wait))
				return
			}
			_ = s.conn.SetWriteDeadline(deadline)
			if err := s.conn.WriteMessage(websocket.TextMessage, f.data); err != nil {
				s.abort()
				return
			}
		case <-ping.C:
			if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.srv.cfg.WriteTimeout)); err != nil {
				s.abort()
				return
			}
		case <-s.stop:
			return
		}
	}
}

// send queues a message; a client too slow to take its messages is dropped.
func (s *session) send(m protocol.ServerMessage) {
	b, err := json.Marshal(m)
	if err != nil {
		s.srv.cfg.Logger.Error("encode message", "type", m.Type, "err", err)
		return
	}
	s.enqueue(frame{data: b})
}

func (s *session) enqueue(f frame) {
	select {
	case <-s.stop:
	case s.out <- f:
	default:
		s.srv.cfg.Logger.Warn("client too slow, dropping connection", "participant", s.id)
		s.abort()
	}
}

// fail sends an error and closes the connection with closeCode.
func (s *session) fail(code, msg, re string, closeCode int) {
	s.send(protocol.ServerMessage{Type: protocol.TypeError, Code: code, Message: msg, Re: re})
	s.closeWith(closeCode, code)
}

// closeWith queues a close frame after what is queued; safe from any goroutine.
func (s *session) closeWith(code int, text string) {
	if s.closing.Swap(true) {
		return
	}
	// A socket on its way out no longer holds its address's place among
	// those not joined (its client sees the close after this).
	s.srv.release(s)
	s.enqueue(frame{close: true, closeCode: code, closeText: text})
}

// readLoop reads messages and has the actor handle each, one at a time,
// until the connection ends, and returns why the participant left.
func (s *session) readLoop() string {
	if s.closing.Load() {
		return rooms.ReasonDropped // refused before it could say anything
	}
	_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.JoinTimeout))
	s.conn.SetPongHandler(func(string) error {
		s.heard.Store(time.Now().UnixNano())
		if s.entered.Load() && !s.closing.Load() {
			_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.IdleTimeout))
		}
		return nil
	})
	var buf bytes.Buffer
	handled := make(chan bool, 1)
	for {
		data, err := s.readFrame(&buf)
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, errTooLarge):
				s.fail(protocol.CodeTooLarge, "frame larger than 256 KiB", "", websocket.CloseMessageTooBig)
				return rooms.ReasonDropped
			case errors.Is(err, errBinary):
				s.reject("", errorf(protocol.CodeBadMessage, "frames must be text (JSON)"))
				if s.closing.Load() {
					return rooms.ReasonDropped
				}
				continue
			case errors.As(err, &ne) && ne.Timeout() && !s.entered.Load() && !s.closing.Load():
				s.fail(protocol.CodeJoinTimeout, "no join within 5 seconds", "", websocket.ClosePolicyViolation)
				return rooms.ReasonDropped
			// 1001 (going away) is what a browser sends when the page
			// reloads or navigates: a drop, so that a reload within the
			// grace period comes back in with its resume secret.
			case websocket.IsCloseError(err, websocket.CloseNormalClosure):
				return rooms.ReasonLeft
			}
			return rooms.ReasonDropped
		}
		s.heard.Store(time.Now().UnixNano())
		if s.entered.Load() && !s.closing.Load() {
			_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.IdleTimeout))
		}
		if !s.limiter.Allow() {
			s.fail(protocol.CodeRateLimited, "too many messages", "", websocket.ClosePolicyViolation)
			return rooms.ReasonDropped
		}
		// The actor is done with data once it answers; buf is not read
		// into again before then.
		if !s.post(func() { handled <- s.handle(data) }) {
			return rooms.ReasonDropped
		}
		var leave bool
		select {
		case leave = <-handled:
		case <-s.stop: // aborted: the actor finishes the message on its own
			return rooms.ReasonDropped
		}
		if leave {
			s.closeWith(websocket.CloseNormalClosure, "bye")
			return rooms.ReasonLeft
		}
		if s.closing.Load() && !s.entered.Load() {
			return rooms.ReasonDropped
		}
	}
}

var (
	errTooLarge = errors.New("frame too large")
	errBinary   = errors.New("binary frame")
)

// readFrame reads one text message of at most MaxFrame bytes into buf. The
// limit is enforced here rather than by the websocket library so that the
// client gets a too_large error before the close.
func (s *session) readFrame(buf *bytes.Buffer) ([]byte, error) {
	mt, r, err := s.conn.NextReader()
	if err != nil {
		return nil, err
	}
	if mt != websocket.TextMessage {
		return nil, errBinary
	}
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(r, protocol.MaxFrame+1))
	if err != nil {
		return nil, err
	}
	if n > protocol.MaxFrame {
		return nil, errTooLarge
	}
	return buf.Bytes(), nil
}
