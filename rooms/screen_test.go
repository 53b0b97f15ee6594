package rooms

import (
	"errors"
	"testing"
)

// TestScreenRules: a client shares only once a therapist lets clients
// share, one share at a time (the host's replaces another), co-therapists
// stop clients' shares but never the host's, turning sharing off ends a
// client's share, and a presenter who leaves ends their share. Everyone
// admitted sees each change in the room's state.
func TestScreenRules(t *testing.T) {
	_, r, _ := newRoom(t)
	_, _ = join(t, r, "dana", RoleTherapist) // the host
	_, _ = join(t, r, "cot", RoleTherapist)
	_, _ = join(t, r, "alex", RoleClient)
	_, _ = join(t, r, "sam", RoleClient)
	if err := r.Admit("dana", "*"); err != nil {
		t.Fatal(err)
	}
	alex, sam := &inbox{}, &inbox{}
	r.members["alex"].l, r.members["sam"].l = alex, sam

	if err := r.StartScreen("alex", "s-alex"); !errors.Is(err, ErrScreenOff) {
		t.Fatalf("a client shares before being let: %v, want ErrScreenOff", err)
	}
	if err := r.SetScreenAllowed("alex", true); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a client lets clients share: %v, want ErrForbidden", err)
	}
	if err := r.StartScreen("cot", "s-cot"); err != nil {
		t.Fatalf("a co-therapist shares: %v", err)
	}
	if e := sam.last(); e.Type != EventRoomUpdated || e.Change != ChangeScreen || e.Screen.By != "cot" || e.Screen.Stream != "s-cot" {
		t.Fatalf("a client saw %+v after the co-therapist's share", e)
	}
	if err := r.SetScreenAllowed("cot", true); err != nil {
		t.Fatalf("a co-therapist lets clients share: %v", err)
	}
	if err := r.StartScreen("alex", "s-alex"); !errors.Is(err, ErrScreenBusy) {
		t.Fatalf("a client shares over a co-therapist's share: %v, want ErrScreenBusy", err)
	}
	if err := r.StopScreen("alex", "cot"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a client stops a therapist's share: %v, want ErrForbidden", err)
	}
	if err := r.StopScreen("cot", ""); err != nil {
		t.Fatalf("the co-therapist stops their own share: %v", err)
	}
	if err := r.StartScreen("alex", "s-alex"); err != nil {
		t.Fatalf("a client shares once let: %v", err)
	}
	if err := r.StopScreen("sam", "alex"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a client stops another client's share: %v, want ErrForbidden", err)
	}
	if err := r.StartScreen("dana", "s-dana"); err != nil {
		t.Fatalf("the host's share replaces a client's: %v", err)
	}
	if e := alex.last(); e.Screen.By != "dana" {
		t.Fatalf("the replaced presenter saw %+v", e)
	}
	if err := r.StopScreen("cot", "dana"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a co-therapist stops the host's share: %v, want ErrForbidden", err)
	}
	if err := r.StartScreen("cot", "s-cot"); !errors.Is(err, ErrScreenBusy) {
		t.Fatalf("a co-therapist's share over the host's: %v, want ErrScreenBusy", err)
	}
	if err := r.StopScreen("dana", ""); err != nil {
		t.Fatal(err)
	}
	if err := r.StopScreen("dana", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("stopping a share that is not on: %v, want ErrNotFound", err)
	}

	if err := r.StartScreen("sam", "s-sam"); err != nil {
		t.Fatal(err)
	}
	if err := r.StopScreen("cot", "sam"); err != nil {
		t.Fatalf("a co-therapist stops a client's share: %v", err)
	}
	if err := r.StartScreen("sam", "s-sam"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetScreenAllowed("dana", false); err != nil {
		t.Fatal(err)
	}
	if e := sam.last(); e.Screen.By != "" || e.Screen.Allowed {
		t.Fatalf("after sharing was turned off a client's share goes on: %+v", e.Screen)
	}
	if err := r.StartScreen("cot", "s-cot"); err != nil {
		t.Fatal(err)
	}
	r.Leave("cot", ReasonLeft)
	if e := sam.last(); e.Type != EventRoomUpdated || e.Screen.By != "" {
		t.Fatalf("the presenter left and the share goes on: %+v", e)
	}
}

// TestSpotlight: a therapist spotlights an admitted participant for
// everyone, a client may not, and the spotlight ends when that person
// leaves.
func TestSpotlight(t *testing.T) {
	_, r, _ := newRoom(t)
	_, _ = join(t, r, "dana", RoleTherapist)
	_, _ = join(t, r, "alex", RoleClient)
	_, _ = join(t, r, "sam", RoleClient)
	if err := r.Admit("dana", "*"); err != nil {
		t.Fatal(err)
	}
	sam := &inbox{}
	r.members["sam"].l = sam
	if err := r.Spotlight("alex", "alex"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a client spotlights: %v, want ErrForbidden", err)
	}
	if err := r.Spotlight("dana", "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("spotlight on nobody: %v, want ErrNotFound", err)
	}
	if err := r.Spotlight("dana", "alex"); err != nil {
		t.Fatal(err)
	}
	if e := sam.last(); e.Change != ChangeSpotlight || e.Spotlight != "alex" {
		t.Fatalf("a client saw %+v", e)
	}
	r.Leave("alex", ReasonLeft)
	if e := sam.last(); e.Change != ChangeSpotlight || e.Spotlight != "" {
		t.Fatalf("the spotlighted person left: %+v", e)
	}
}
