package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"iop/rooms"
	"iop/signaling/client"
	"iop/signaling/protocol"
)

// eventually polls cond every 50 ms until it holds or the timeout passes,
// then fails with what cond last reported.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s; %s", what, timeout, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// joinPeer joins a headless pion participant and closes it when the test
// ends. Therapists admit everyone who waits; a client returns once admitted.
func joinPeer(t testing.TB, n *node, name string, role rooms.Role, room string) *client.Participant {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tok := n.joinToken(t, "sub-"+name, name, role, room)
	p, err := client.Join(ctx, n.url, tok, client.Options{AutoAdmit: role == rooms.RoleTherapist})
	if err != nil {
		t.Fatalf("%s joins %s: %v", name, room, err)
	}
	t.Cleanup(p.Close)
	if err := p.WaitPublishing(ctx); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

// receivesFrom reports whether p got at least min audio and video packets
// from every publisher in from, and describes what it got otherwise.
func receivesFrom(p *client.Participant, min int, from ...*client.Participant) (bool, string) {
	got := p.Received()
	ok := true
	var missing []string
	for _, f := range from {
		for _, kind := range []string{"audio", "video"} {
			st := got[client.TrackKey{Participant: f.ID(), Kind: kind}]
			if st.Packets < min {
				ok = false
				missing = append(missing, fmt.Sprintf("%s %s: %d packets", f.ID(), kind, st.Packets))
			}
		}
	}
	return ok, p.ID() + " is missing " + strings.Join(missing, ", ")
}

func keys(m map[client.TrackKey]client.TrackStats) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s/%s=%d", k.Participant, k.Kind, v.Packets))
	}
	sort.Strings(out)
	return out
}

// waitEvent reads p's events until one matches, skipping others.
func waitEvent(t testing.TB, p *client.Participant, timeout time.Duration, what string, match func(protocol.ServerMessage) bool) protocol.ServerMessage {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-p.Events():
			if !ok {
				t.Fatalf("%s: %s: connection closed", p.ID(), what)
			}
			if match(m) {
				return m
			}
		case <-timer.C:
			t.Fatalf("%s: no %s within %s", p.ID(), what, timeout)
		}
	}
}

// TestGroupCall is the foundation's end-to-end check: four headless
// participants in one room hear and see each other (and not themselves), a
// late joiner gets everyone with a fresh keyframe, a leaver's tracks go away,
// and another room hears none of it.
func TestGroupCall(t *testing.T) {
	n := testNode(t)
	const room = "group-a"

	ps := []*client.Participant{
		joinPeer(t, n, "therapist", rooms.RoleTherapist, room),
		joinPeer(t, n, "alex", rooms.RoleClient, room),
		joinPeer(t, n, "sam", rooms.RoleClient, room),
		joinPeer(t, n, "jordan", rooms.RoleClient, room),
	}
	otherTherapist := joinPeer(t, n, "casey", rooms.RoleTherapist, "group-b")
	other := joinPeer(t, n, "riley", rooms.RoleClient, "group-b")

	for i, p := range ps {
		others := append(append([]*client.Participant{}, ps[:i]...), ps[i+1:]...)
		eventually(t, 20*time.Second, "media reaches "+p.ID(), func() (bool, string) { return receivesFrom(p, 20, others...) })
	}
	for _, p := range ps {
		for k := range p.Received() {
			if k.Participant == p.ID() {
				t.Errorf("%s receives its own %s", p.ID(), k.Kind)
			}
			if k.Participant == other.ID() || k.Participant == otherTherapist.ID() {
				t.Errorf("%s in %s receives %s from group-b", p.ID(), room, k.Kind)
			}
		}
	}
	eventually(t, 20*time.Second, "group-b's own call works", func() (bool, string) { return receivesFrom(other, 20, otherTherapist) })

	// A late joiner receives all four, and each publisher is asked for a keyframe.
	before := make([]int64, len(ps))
	for i, p := range ps {
		before[i] = p.KeyframeRequests()
	}
	late := joinPeer(t, n, "morgan", rooms.RoleClient, room)
	if got := len(late.Joined().Participants); got != 4 {
		t.Errorf("late joiner's joined lists %d participants, want 4", got)
	}
	eventually(t, 20*time.Second, "media reaches the late joiner", func() (bool, string) { return receivesFrom(late, 20, ps...) })
	eventually(t, 10*time.Second, "keyframe requests for the late joiner", func() (bool, string) {
		var state []string
		ok := true
		for i, p := range ps {
			if p.KeyframeRequests() <= before[i] {
				ok = false
			}
			state = append(state, fmt.Sprintf("%s: %d->%d", p.ID(), before[i], p.KeyframeRequests()))
		}
		return ok, "PLIs seen by publishers " + strings.Join(state, ", ")
	})
	eventually(t, 10*time.Second, "a keyframe of every publisher reaches the late joiner", func() (bool, string) {
		got := late.Received()
		for _, p := range ps {
			if got[client.TrackKey{Participant: p.ID(), Kind: "video"}].Keyframes == 0 {
				return false, "no keyframe yet from " + p.ID()
			}
		}
		return true, ""
	})
	for _, p := range ps {
		eventually(t, 20*time.Second, "late joiner's media reaches "+p.ID(), func() (bool, string) { return receivesFrom(p, 20, late) })
	}

	// One leaves: the others are told, and its tracks leave their subscribe PCs.
	leaver := ps[1]
	leaver.Leave()
	for _, p := range []*client.Participant{ps[0], ps[2], ps[3], late} {
		m := waitEvent(t, p, 10*time.Second, "participant_left for "+leaver.ID(), func(m protocol.ServerMessage) bool {
			return m.Type == protocol.TypeParticipantLeft && m.ID == leaver.ID()
		})
		if m.Reason != protocol.ReasonLeft {
			t.Errorf("participant_left reason %q, want %q", m.Reason, protocol.ReasonLeft)
		}
		eventually(t, 10*time.Second, "the leaver's tracks end at "+p.ID(), func() (bool, string) {
			got := p.Received()
			a := got[client.TrackKey{Participant: leaver.ID(), Kind: "audio"}]
			v := got[client.TrackKey{Participant: leaver.ID(), Kind: "video"}]
			return a.Ended && v.Ended, fmt.Sprintf("audio ended %v, video ended %v", a.Ended, v.Ended)
		})
	}

	// group-b still hears nothing from group-a.
	for k := range other.Received() {
		if k.Participant != otherTherapist.ID() {
			t.Errorf("group-b participant receives %s from %s", k.Kind, k.Participant)
		}
	}
	if t.Failed() {
		t.Logf("group-b received: %v", keys(other.Received()))
	}
}

// TestHealthAndMetrics: /healthz and /readyz answer, and /metrics counts the
// people in a call.
func TestHealthAndMetrics(t *testing.T) {
	n := testNode(t)
	get := func(path string) (int, string) {
		resp, err := http.Get(n.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := get(p); code != http.StatusOK {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
	a := joinPeer(t, n, "therapist", rooms.RoleTherapist, "m-1")
	b := joinPeer(t, n, "alex", rooms.RoleClient, "m-1")
	eventually(t, 20*time.Second, "call up", func() (bool, string) { return receivesFrom(a, 10, b) })
	_, body := get("/metrics")
	for _, want := range []string{"iop_participants 2", "iop_rooms 1", "iop_peer_connections 4", "iop_published_tracks 4", "iop_sockets 2", `iop_participants_by_transport{transport="udp"} 2`} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(body, "iop_rtp_packets_shed_total") {
		t.Errorf("/metrics lacks the shed packets:\n%s", body)
	}
	for _, want := range []string{"iop_video_waiting_keyframe", "iop_video_keyframe_wait_longest_seconds", "iop_keyframe_requests_total", "iop_udp_send_batches_total", "iop_udp_batched_datagrams_total"} {
		if !strings.Contains(body, "\n"+want+" ") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !strings.Contains(body, "iop_rtp_packets_received_total") {
		t.Error("/metrics lacks the packet counter")
	}
}
