package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"iop/rooms"
	"iop/signaling/client"
	"iop/signaling/protocol"
)

// metricValue reads one sample of /metrics, e.g.
// `iop_limit_refusals_total{limit="joins_per_addr"}`.
func metricValue(t *testing.T, n *node, sample string) string {
	t.Helper()
	resp, err := http.Get(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no %s", sample)
	return ""
}

// from dials the node as if through a trusted proxy for the client at addr.
func from(t *testing.T, n *node, addr string) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, n.url, http.Header{"X-Forwarded-For": {addr}})
	if err != nil {
		t.Fatalf("dial as %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// joinAs sends a join with tok on c and returns the answer.
func joinAs(t *testing.T, c *client.Conn, tok string) protocol.ServerMessage {
	t.Helper()
	if err := c.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Token: tok, ID: "j"}); err != nil {
		t.Fatal(err)
	}
	m, err := c.Read(time.Now().Add(10 * time.Second))
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	return m
}

// TestLimits: a client that opens many sockets with one token, an address
// that holds sockets without joining, and an address that joins too often
// each get their error code and /metrics counts them, while a call in
// another room keeps its media flowing and a newcomer from another address
// still gets in. The clients "come from" addresses through a trusted proxy
// (X-Forwarded-For), as they do behind Caddy.
func TestLimits(t *testing.T) {
	n := testNode(t, func(c *config) {
		c.Proxies = "127.0.0.1"
		c.SocketsPerPerson = 2
		c.UnjoinedPerAddr = 3
		c.JoinRate = 0.001 // no refill during the test
		c.JoinBurst = 5
	})
	// The well-behaved call, from 127.0.0.1 (the proxy itself, no header).
	calm := uniqueRoom("calm")
	th := joinPeer(t, n, "Dana", rooms.RoleTherapist, calm)
	cl := joinPeer(t, n, "Alex", rooms.RoleClient, calm)
	flowing := func(what string) {
		t.Helper()
		base := min(th.Received()[client.TrackKey{Participant: cl.ID(), Kind: "video"}].Packets,
			cl.Received()[client.TrackKey{Participant: th.ID(), Kind: "video"}].Packets)
		eventually(t, 20*time.Second, "media in the calm room "+what, func() (bool, string) {
			ok1, s1 := receivesFrom(th, base+20, cl)
			ok2, s2 := receivesFrom(cl, base+20, th)
			return ok1 && ok2, s1 + "; " + s2
		})
	}
	flowing("before")

	t.Run("sockets per person", func(t *testing.T) {
		tok := n.joinToken(t, "spammer", "Spam", rooms.RoleClient, uniqueRoom("noisy"))
		var conns []*client.Conn
		for i := range 5 {
			c := from(t, n, fmt.Sprintf("203.0.113.%d", 10+i)) // under each address's join rate
			if m := joinAs(t, c, tok); m.Type != protocol.TypeWaiting {
				t.Fatalf("socket %d: join answered %s %s, want waiting", i, m.Type, m.Code)
			}
			conns = append(conns, c)
		}
		for i, c := range conns[:3] {
			t.Logf("socket %d", i)
			expectError(t, c, protocol.CodeReplaced)
			expectClosed(t, c, 1008)
		}
		for _, c := range conns[3:] {
			expectOpen(t, c)
		}
		if v := metricValue(t, n, `iop_limit_refusals_total{limit="sockets_per_person"}`); v != "3" {
			t.Errorf("sockets_per_person refusals %s, want 3", v)
		}
	})

	t.Run("unjoined per address", func(t *testing.T) {
		for range 3 {
			from(t, n, "203.0.113.50") // held open without joining
		}
		c := from(t, n, "203.0.113.50")
		expectError(t, c, protocol.CodeTooManyConnections)
		expectClosed(t, c, 1008)
		other := from(t, n, "198.51.100.50")
		if m := joinAs(t, other, n.joinToken(t, "newcomer-1", "New", rooms.RoleClient, calm)); m.Type != protocol.TypeWaiting {
			t.Errorf("a newcomer from another address: %s %s, want waiting", m.Type, m.Code)
		}
		if v := metricValue(t, n, `iop_limit_refusals_total{limit="unjoined_per_addr"}`); v != "1" {
			t.Errorf("unjoined_per_addr refusals %s, want 1", v)
		}
	})

	t.Run("joins per address", func(t *testing.T) {
		for i := range 5 {
			c := from(t, n, "203.0.113.60")
			if m := joinAs(t, c, "not-a-token"); m.Code != protocol.CodeUnauthorized {
				t.Fatalf("join %d: %s %s, want unauthorized", i, m.Type, m.Code)
			}
			expectClosed(t, c, 1008)
		}
		c := from(t, n, "203.0.113.60")
		if m := joinAs(t, c, n.joinToken(t, "flooder", "F", rooms.RoleClient, calm)); m.Code != protocol.CodeTooManyJoins {
			t.Fatalf("join over the rate: %s %s, want too_many_joins", m.Type, m.Code)
		}
		expectClosed(t, c, 1008)
		other := from(t, n, "198.51.100.60")
		if m := joinAs(t, other, n.joinToken(t, "newcomer-2", "New", rooms.RoleClient, calm)); m.Type != protocol.TypeWaiting {
			t.Errorf("a newcomer from another address: %s %s, want waiting", m.Type, m.Code)
		}
		if v := metricValue(t, n, `iop_limit_refusals_total{limit="joins_per_addr"}`); v != "1" {
			t.Errorf("joins_per_addr refusals %s, want 1", v)
		}
	})
	flowing("after")
}

// TestHTTPLimits: iopd's HTTP server bounds what one connection may hold:
// an idle keep-alive connection is closed, a request whose headers never
// finish is cut, and oversized headers get 431.
func TestHTTPLimits(t *testing.T) {
	n := testNode(t, func(c *config) {
		c.HTTPIdleTimeout = 500 * time.Millisecond
		c.HTTPReadTimeout = 500 * time.Millisecond
		c.HTTPMaxHeader = 8 << 10
	})
	addr := strings.TrimPrefix(n.url, "http://")
	closedByServer := func(t *testing.T, c net.Conn) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err := io.Copy(io.Discard, c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the server kept the connection open")
		}
	}
	t.Run("idle keep-alive", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz: %v %v", resp, err)
		}
		closedByServer(t, c)
	})
	t.Run("slow headers", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\nX-Slow: ", addr)
		closedByServer(t, c)
	})
	t.Run("large header", func(t *testing.T) {
		req, _ := http.NewRequest("GET", n.url+"/healthz", nil)
		req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("64 KiB of headers: %d, want 431", resp.StatusCode)
		}
	})
}
