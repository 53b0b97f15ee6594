package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"iop/rooms"
	"iop/signaling/client"
	"iop/signaling/protocol"
)

// calmCall starts a therapist and a client in a room of their own and
// returns a check that both still receive the other's audio and video: 20
// packets more of each than at the previous check.
func calmCall(t *testing.T, n *node) func(what string) {
	t.Helper()
	room := uniqueRoom("calm")
	th := joinPeer(t, n, "Dana", rooms.RoleTherapist, room)
	cl := joinPeer(t, n, "Alex", rooms.RoleClient, room)
	base := 0
	return func(what string) {
		t.Helper()
		eventually(t, 20*time.Second, "media in the calm room "+what, func() (bool, string) {
			ok1, s1 := receivesFrom(th, base+20, cl)
			ok2, s2 := receivesFrom(cl, base+20, th)
			return ok1 && ok2, s1 + "; " + s2
		})
		base = min(packets(th, cl.ID(), "audio"), packets(th, cl.ID(), "video"),
			packets(cl, th.ID(), "audio"), packets(cl, th.ID(), "video"))
	}
}

// publishOffer makes a publish offer sending audio and video tracks of the
// given kinds, as a browser would (sendonly transceivers).
func publishOffer(t *testing.T, kinds ...webrtc.RTPCodecType) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, k := range kinds {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}

// answered sends a publish offer on s and reports whether the server
// answered it, or the code it refused it with.
func answered(t *testing.T, s rawSession, sdp string) string {
	t.Helper()
	id := "o-" + randomHex(3)
	if err := s.c.Send(protocol.ClientMessage{Type: protocol.TypeOffer, PC: protocol.PCPublish, SDP: sdp, ID: id}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := s.c.Read(time.Now().Add(10 * time.Second))
		if err != nil {
			t.Fatalf("waiting for the answer to an offer: %v", err)
		}
		switch {
		case m.Type == protocol.TypeAnswer && m.PC == protocol.PCPublish:
			return "answer"
		case m.Type == protocol.TypeError && m.Re == id:
			if m.Message == "" {
				t.Errorf("error %s has no message", m.Code)
			}
			return m.Code
		}
	}
}

// TestMediaLimits: a participant that offers too many tracks, trickles too
// many candidates or renegotiates too often gets the limit's error code and
// /metrics counts it; what it had keeps working, and a call in another
// room keeps its media flowing throughout. Each offender is a therapist of
// a room of its own, admitted at once (the role that can do the most).
func TestMediaLimits(t *testing.T) {
	n := testNode(t, func(c *config) {
		c.TracksPerPerson = 2
		c.CandidatesPerPC = 6
		c.OffersPerMinute = 3
	})
	flowing := calmCall(t, n)
	flowing("before")
	audio, video := webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo
	offender := func(name string) rawSession {
		return rawJoin(t, n, n.joinToken(t, "sub-"+name, name, rooms.RoleTherapist, uniqueRoom("noisy")))
	}

	t.Run("tracks per participant", func(t *testing.T) {
		s := offender("tracks")
		if got := answered(t, s, publishOffer(t, audio, video, video)); got != protocol.CodeTooManyTracks {
			t.Fatalf("an offer of 3 tracks over a limit of 2: %s, want %s", got, protocol.CodeTooManyTracks)
		}
		many := make([]webrtc.RTPCodecType, 5)
		for i := range many {
			many[i] = video
		}
		if got := answered(t, s, publishOffer(t, many...)); got != protocol.CodeTooManyTracks {
			t.Fatalf("an offer of 5 media sections: %s, want %s", got, protocol.CodeTooManyTracks)
		}
		// Nothing was applied: the participant may still publish within the limit.
		if got := answered(t, s, publishOffer(t, audio, video)); got != "answer" {
			t.Fatalf("an offer of 2 tracks after the refusals: %s, want an answer", got)
		}
		expectOpen(t, s.c)
		if v := metricValue(t, n, `iop_limit_refusals_total{limit="tracks_per_participant"}`); v != "2" {
			t.Errorf("tracks_per_participant refusals %s, want 2", v)
		}
		flowing("after too many tracks")
	})

	t.Run("candidates per PeerConnection", func(t *testing.T) {
		s := offender("candidates")
		cand := func(i int) protocol.ClientMessage {
			mid, index := "0", uint16(0)
			return protocol.ClientMessage{Type: protocol.TypeCandidate, PC: protocol.PCPublish, Candidate: &protocol.Candidate{
				Candidate: fmt.Sprintf("candidate:%d 1 udp 2130706431 127.0.0.1 %d typ host", i, 40000+i), SDPMid: &mid, SDPMLineIndex: &index,
			}}
		}
		// Held before the description, then added with it: 6 in all.
		for i := range 4 {
			if got := s.ask(t, cand(i)); got != "" {
				t.Fatalf("candidate %d before the offer: %s", i, got)
			}
		}
		if got := answered(t, s, publishOffer(t, audio, video)); got != "answer" {
			t.Fatalf("offer: %s", got)
		}
		for i := 4; i < 6; i++ {
			if got := s.ask(t, cand(i)); got != "" {
				t.Fatalf("candidate %d after the offer: %s", i, got)
			}
		}
		for i := 6; i < 9; i++ {
			if got := s.ask(t, cand(i)); got != protocol.CodeTooManyCandidates {
				t.Fatalf("candidate %d over a limit of 6: %q, want %s", i, got, protocol.CodeTooManyCandidates)
			}
		}
		// The end-of-candidates marker is no candidate; a new description
		// (an ICE restart) takes candidates afresh.
		if got := s.ask(t, protocol.ClientMessage{Type: protocol.TypeCandidate, PC: protocol.PCPublish}); got != "" {
			t.Fatalf("end of candidates: %s", got)
		}
		if got := answered(t, s, publishOffer(t, audio, video)); got != "answer" {
			t.Fatalf("a new offer: %s", got)
		}
		if got := s.ask(t, cand(10)); got != "" {
			t.Fatalf("a candidate for the new description: %s", got)
		}
		if v := metricValue(t, n, `iop_limit_refusals_total{limit="candidates_per_pc"}`); v != "3" {
			t.Errorf("candidates_per_pc refusals %s, want 3", v)
		}
		flowing("after too many candidates")
	})

	t.Run("renegotiations per minute", func(t *testing.T) {
		s := offender("renegotiates")
		sdp := publishOffer(t, audio, video)
		for i := range 3 {
			if got := answered(t, s, sdp); got != "answer" {
				t.Fatalf("offer %d of 3 a minute: %s", i+1, got)
			}
		}
		for i := range 3 {
			if got := answered(t, s, sdp); got != protocol.CodeTooManyRenegotiations {
				t.Fatalf("offer %d over 3 a minute: %s, want %s", 4+i, got, protocol.CodeTooManyRenegotiations)
			}
		}
		expectOpen(t, s.c)
		// Another participant is not held back by this one's offers.
		if got := answered(t, offender("renegotiates-2"), sdp); got != "answer" {
			t.Errorf("another participant's first offer: %s", got)
		}
		if v := metricValue(t, n, `iop_limit_refusals_total{limit="renegotiations_per_min"}`); v != "3" {
			t.Errorf("renegotiations_per_min refusals %s, want 3", v)
		}
		flowing("after too many renegotiations")
	})
}

// TestNodeFull: a node that carries IOP_MAX_PARTICIPANTS people refuses
// the next join with node_full and counts it, while its calls go on; a
// person already on the node may still open a socket (it replaces theirs,
// no new place), and once someone leaves a newcomer gets in.
func TestNodeFull(t *testing.T) {
	n := testNode(t, func(c *config) { c.MaxParticipants = 3 })
	flowing := calmCall(t, n) // 2 people
	flowing("before")
	room := uniqueRoom("full")
	third := rawJoin(t, n, n.joinToken(t, "sub-Kim", "Kim", rooms.RoleTherapist, room))

	code, c := joinCode(t, n, n.joinToken(t, "sub-Sam", "Sam", rooms.RoleClient, room))
	if code != protocol.CodeNodeFull {
		t.Fatalf("a fourth person on a node of 3: %s, want %s", code, protocol.CodeNodeFull)
	}
	expectClosed(t, c, 1008)
	// A stranger with another program's token is refused the same way.
	example, _ := tenants()
	if code, _ := joinCode(t, n, programToken(t, n, example, "t-x", "Lee", rooms.RoleTherapist, uniqueRoom("other"))); code != protocol.CodeNodeFull {
		t.Errorf("another program's therapist on a full node: %s, want %s", code, protocol.CodeNodeFull)
	}
	if v := metricValue(t, n, `iop_limit_refusals_total{limit="participants_per_node"}`); v != "2" {
		t.Errorf("participants_per_node refusals %s, want 2", v)
	}
	flowing("with the node full")

	// Kim opens a second window: no new place, so it is let in.
	again := rawJoin(t, n, n.joinToken(t, "sub-Kim", "Kim", rooms.RoleTherapist, room))
	expectOpen(t, again.c)
	if code, _ := joinCode(t, n, n.joinToken(t, "sub-Sam", "Sam", rooms.RoleClient, room)); code != protocol.CodeNodeFull {
		t.Errorf("after Kim's second window the node is still full for Sam: %s", code)
	}

	// Kim leaves (both windows): Sam gets in.
	for _, s := range []rawSession{third, again} {
		_ = s.c.Send(protocol.ClientMessage{Type: protocol.TypeLeave})
		_ = s.c.Close()
	}
	eventually(t, 10*time.Second, "a place on the node for Sam", func() (bool, string) {
		code, c := joinCode(t, n, n.joinToken(t, "sub-Sam", "Sam", rooms.RoleClient, room))
		_ = c.Close()
		return code == protocol.TypeWaiting, "join answered " + code
	})
	flowing("after")
}

// TestHTTPConnsPerAddress: one address may hold only IOP_HTTP_CONNS_PER_ADDR
// TCP connections at once; the next is answered 429 and closed, and /metrics
// counts it. Another address (the calm call's, 127.0.0.1) is not affected,
// and a connection closed by the offender gives its place back. A trusted
// proxy's connections are not counted.
func TestHTTPConnsPerAddress(t *testing.T) {
	n := testNode(t, func(c *config) {
		c.HTTPConnsPerAddr = 8
		c.Proxies = "127.0.0.3"
	})
	flowing := calmCall(t, n)
	flowing("before")
	addr := strings.TrimPrefix(n.url, "http://")
	dialFrom := func(local string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial from %s: %v", local, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	get := func(c net.Conn) (int, error) {
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	var held []net.Conn
	for i := range 8 {
		c := dialFrom("127.0.0.2")
		if code, err := get(c); err != nil || code != http.StatusOK {
			t.Fatalf("connection %d of 8: %d %v", i+1, code, err)
		}
		held = append(held, c) // kept alive, idle
	}
	over := dialFrom("127.0.0.2")
	if code, err := get(over); code != http.StatusTooManyRequests {
		t.Fatalf("a ninth connection: %d %v, want 429", code, err)
	}
	if v := metricValue(t, n, `iop_limit_refusals_total{limit="http_conns_per_addr"}`); v != "1" {
		t.Errorf("http_conns_per_addr refusals %s, want 1", v)
	}
	// Another address still connects, websockets included.
	if ws, err := client.Dial(t.Context(), n.url, nil); err != nil {
		t.Errorf("127.0.0.1 (the calm call's address) cannot connect: %v", err)
	} else {
		_ = ws.Close()
	}
	// A trusted proxy carries many clients: it is not counted.
	for i := range 12 {
		if code, err := get(dialFrom("127.0.0.3")); err != nil || code != http.StatusOK {
			t.Fatalf("the proxy's connection %d: %d %v", i+1, code, err)
		}
	}
	// The offender closes one: its place is given back.
	_ = held[0].Close()
	eventually(t, 10*time.Second, "a place again for 127.0.0.2", func() (bool, string) {
		code, err := get(dialFrom("127.0.0.2"))
		return code == http.StatusOK, fmt.Sprintf("%d %v", code, err)
	})
	flowing("after")
}
