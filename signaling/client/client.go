// Package client is a Go client of the signaling protocol with real pion
// PeerConnections: it joins a room, publishes synthetic audio and video (no
// encoder) and counts what it receives. Tests and the load generator use it.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"iop/signaling/protocol"
)

// Conn is a signaling websocket that reads and writes protocol messages.
type Conn struct {
	ws      *websocket.Conn
	writeMu sync.Mutex
	deaf    atomic.Bool // pings go unanswered
}

// SignalURL turns a server base URL (http://host:port) into its websocket endpoint.
func SignalURL(base string) string {
	u := strings.TrimRight(base, "/")
	switch {
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + strings.TrimPrefix(u, "http://")
	}
	return u + "/v1/signal"
}

// Dial opens the signaling websocket of the server at base.
func Dial(ctx context.Context, base string, header http.Header) (*Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.DialContext(ctx, SignalURL(base), header)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial signaling: %w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial signaling: %w", err)
	}
	ws.SetReadLimit(4 << 20)
	c := &Conn{ws: ws}
	ws.SetPingHandler(func(data string) error {
		if c.deaf.Load() {
			return nil
		}
		c.writeMu.Lock()
		defer c.writeMu.Unlock()
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	})
	return c, nil
}

// StopPongs leaves the server's pings unanswered from now on, as a frozen
// process would (with Participant.Freeze, a silent drop).
func (c *Conn) StopPongs() { c.deaf.Store(true) }

// Send writes one message as JSON.
func (c *Conn) Send(m any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return c.SendRaw(websocket.TextMessage, b)
}

// SendRaw writes one frame as it is (for tests of bad input).
func (c *Conn) SendRaw(messageType int, data []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(messageType, data)
}

// Read returns the next server message. When the server closes the
// socket, the error is a *websocket.CloseError carrying its code.
func (c *Conn) Read(deadline time.Time) (protocol.ServerMessage, error) {
	var m protocol.ServerMessage
	_ = c.ws.SetReadDeadline(deadline)
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("server sent bad JSON: %w", err)
	}
	return m, nil
}

// Close closes the socket without a websocket close handshake, as a browser
// tab that crashed or lost its network would.
func (c *Conn) Close() error { return c.ws.Close() }

// CloseNormally sends a close frame, then closes.
func (c *Conn) CloseNormally() error {
	c.writeMu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.writeMu.Unlock()
	return c.ws.Close()
}

// ErrorMessage is an error message from the server.
type ErrorMessage struct {
	Code, Message string
}

func (e *ErrorMessage) Error() string { return e.Code + ": " + e.Message }

// AsErrorMessage returns the server's error code carried by err, or "".
func AsErrorMessage(err error) string {
	var em *ErrorMessage
	if errors.As(err, &em) {
		return em.Code
	}
	return ""
}
