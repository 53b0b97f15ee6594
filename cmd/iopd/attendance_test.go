package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"iop/rooms"
	"iop/signaling/token"
)

// TestAttendanceThroughTheServer: a client's time in a real call shows up in
// the session roster and their week, for the program's staff and for the
// client, and for nobody else.
func TestAttendanceThroughTheServer(t *testing.T) {
	n := testNode(t)
	room := "att-" + token.RandomID(3)
	ther := joinPeer(t, n, "therapist", rooms.RoleTherapist, room)
	alex := joinPeer(t, n, "alex", rooms.RoleClient, room)
	eventually(t, 20*time.Second, "call up", func() (bool, string) { return receivesFrom(ther, 10, alex) })
	time.Sleep(1500 * time.Millisecond)
	alex.Leave()

	staff := n.joinToken(t, "staff-1", "Billing", rooms.RoleStaff, token.AnyRoom)
	var roster map[string]any
	eventually(t, 10*time.Second, "the client's closed segment in the roster", func() (bool, string) {
		status, body := api(t, n, "GET", "/v1/attendance/rooms/"+room, staff, nil)
		roster = body
		people, _ := body["people"].([]any)
		for _, p := range people {
			p := p.(map[string]any)
			if p["sub"] != "sub-alex" {
				continue
			}
			segs, _ := p["segments"].([]any)
			if len(segs) == 1 && segs[0].(map[string]any)["end"] != nil && p["seconds"].(float64) >= 1 {
				return true, ""
			}
		}
		return false, http.StatusText(status)
	})
	if roster["room"].(map[string]any)["kind"] != "group" {
		t.Errorf("roster room %v", roster["room"])
	}

	week := time.Now().In(time.UTC)
	y, w := week.ISOWeek()
	path := "/v1/attendance/people/sub-alex/weeks/" + isoWeek(y, w)
	if status, body := api(t, n, "GET", path, staff, nil); status != http.StatusOK || body["sessions"] == nil {
		t.Errorf("staff reading the client's week: %d %v", status, body)
	}
	own := n.joinToken(t, "sub-alex", "alex", rooms.RoleClient, room)
	if status, _ := api(t, n, "GET", path, own, nil); status != http.StatusOK {
		t.Errorf("the client reading their own week: %d", status)
	}
	other := n.joinToken(t, "sub-sam", "sam", rooms.RoleClient, room)
	if status, body := api(t, n, "GET", path, other, nil); status != http.StatusForbidden || body["code"] != "forbidden" {
		t.Errorf("another client reading it: %d %v", status, body)
	}
	foreign, err := n.minter.Mint(func() token.Claims {
		c := tokenClaims("staff-9", "Elsewhere", rooms.RoleStaff, token.AnyRoom)
		c.Program = "another-program"
		return c
	}(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// A person's week is read within the bearer's program: staff of another
	// program see none of this program's minutes.
	if status, body := api(t, n, "GET", path, foreign, nil); status != http.StatusOK || body["minutes"].(float64) != 0 || len(body["sessions"].([]any)) != 0 {
		t.Errorf("staff of another program see %d %v", status, body)
	}
	if status, _ := api(t, n, "GET", "/v1/attendance/programs/demo/weeks/"+isoWeek(y, w), foreign, nil); status != http.StatusForbidden {
		t.Errorf("staff of another program reading the program: %d", status)
	}

	csv := getCSV(t, n, "/v1/attendance/programs/demo/weeks/"+isoWeek(y, w)+".csv", staff)
	lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
	if lines[0] != "sub,name,role,room,kind,date_local,start_utc,end_utc,start_local,end_local,seconds,video_seconds,modality,audio_only_seconds,no_media_seconds,direct_seconds,no_clinician_seconds" {
		t.Errorf("CSV header %q", lines[0])
	}
	if !strings.Contains(string(csv), "sub-alex,") || !strings.Contains(string(csv), room) {
		t.Errorf("CSV lacks the client's row:\n%s", csv)
	}
}

func isoWeek(y, w int) string { return fmt.Sprintf("%d-W%02d", y, w) }
