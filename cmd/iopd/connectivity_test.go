package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"iop/rooms"
	"iop/sfu/turn"
	"iop/signaling/token"
)

// TestConnectivityEndpointNeedsAJoinToken: the join page's connection check
// hands out TURN credentials and server PeerConnections, so it answers only
// a join token that grants media to a person who is not blocked; its
// credentials last minutes, not a session.
func TestConnectivityEndpointNeedsAJoinToken(t *testing.T) {
	n := testNode(t, withTURN("turn:127.0.0.1:3478?transport=tcp"))
	client := n.joinToken(t, "client-1", "Alex", rooms.RoleClient, "check")

	expired, err := n.minter.Mint(tokenClaims("client-1", "Alex", rooms.RoleClient, "check"), -time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, bearer string
		want         int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"a forged token", client[:len(client)-4] + "AAAA", http.StatusUnauthorized},
		{"an expired token", expired, http.StatusUnauthorized},
		{"a staff token for the API only", n.joinToken(t, "staff-1", "Billing", rooms.RoleStaff, token.AnyRoom), http.StatusForbidden},
	} {
		for _, method := range []string{"GET", "POST"} {
			status, body := api(t, n, method, "/v1/connectivity", tc.bearer, map[string]string{"transport": "udp", "sdp": "v=0"})
			if status != tc.want || body["ice_servers"] != nil || body["sdp"] != nil {
				t.Errorf("%s %s: %d %v, want %d and nothing else", method, tc.name, status, body, tc.want)
			}
		}
	}

	ctx := context.Background()
	if err := n.store.Block(ctx, "demo", "client-9"); err != nil {
		t.Fatal(err)
	}
	if status, _ := api(t, n, "GET", "/v1/connectivity", n.joinToken(t, "client-9", "Kim", rooms.RoleClient, "check"), nil); status != http.StatusForbidden {
		t.Errorf("a blocked person: %d, want 403", status)
	}

	status, body := api(t, n, "GET", "/v1/connectivity", client, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /v1/connectivity: %d %v", status, body)
	}
	if got, _ := body["transports"].([]any); len(got) != 3 {
		t.Errorf("transports %v, want udp, tcp and relay", got)
	}
	servers, _ := body["ice_servers"].([]any)
	if len(servers) != 1 {
		t.Fatalf("ice_servers %v, want the TURN server", body["ice_servers"])
	}
	s := servers[0].(map[string]any)
	user, _ := s["username"].(string)
	pass, _ := s["credential"].(string)
	if !turn.Valid([]byte(testTURNSecret), user, pass, time.Now()) {
		t.Errorf("the check's TURN credential %q does not validate", user)
	}
	if turn.Valid([]byte(testTURNSecret), user, pass, time.Now().Add(6*time.Minute)) {
		t.Errorf("the check's TURN credential %q lasts longer than 5 minutes", user)
	}

	if status, body := api(t, n, "POST", "/v1/connectivity", client, map[string]string{"transport": "udp", "sdp": "v=0\r\nnot an offer"}); status != http.StatusUnprocessableEntity {
		t.Errorf("a bad offer: %d %v", status, body)
	}

	// A real offer of one data channel gets a complete answer with the
	// server's candidates for that transport only.
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.CreateDataChannel("check", nil); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ transport, want, not string }{{"udp", " udp ", " tcp "}, {"tcp", " tcp ", " udp "}} {
		status, body := api(t, n, "POST", "/v1/connectivity", client, map[string]string{"transport": tc.transport, "sdp": offer.SDP})
		sdp, _ := body["sdp"].(string)
		if status != http.StatusOK || !strings.Contains(sdp, "a=candidate") || !strings.Contains(sdp, tc.want) || strings.Contains(sdp, tc.not) {
			t.Errorf("%s check: %d, answer %q", tc.transport, status, sdp)
		}
	}
}
