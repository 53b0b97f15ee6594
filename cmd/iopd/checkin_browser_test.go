package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"iop/rooms"
	"iop/signaling/token"
)

// fillCheckIn fills the check-in form (location code or "other" with a
// place, private or not, phone) and sends it.
func fillCheckIn(t *testing.T, tab *page, location, other string, private bool, phone string) {
	t.Helper()
	script := fmt.Sprintf(`(() => {
  const v = document.querySelector('[data-view="checkin"]');
  const sel = v.querySelector('[data-checkin-location]');
  sel.value = %q;
  sel.dispatchEvent(new Event('change'));
  v.querySelector('[data-checkin-other]').value = %q;
  v.querySelector('[data-checkin-private][value="%t"]').checked = true;
  v.querySelector('[data-checkin-phone]').value = %q;
  return true;
})()`, location, other, private, phone)
	if _, err := evaluate[bool](tab, script); err != nil {
		t.Fatalf("fill the check-in: %v", err)
	}
	click(t, tab, `[data-view="checkin"] button[type="submit"]`)
}

// waitingCheckIn is the check-in shown in the therapist's waiting list.
const waitingCheckIn = `(document.querySelector('[data-waiting-people] li [data-checkin]:not([hidden])')?.textContent || '')`

// consentShown is true once the page has filled in a consent text.
const consentShown = `document.querySelector('[data-consent-text]').childElementCount > 0`

// TestBrowserCheckInAndConsent (issue 16, acceptance 2): a client's first
// session asks for the program's consent, then the check-in, both before
// the camera turns on; the therapist sees the check-in next to the person
// in the waiting list and in the call; a later session asks for the
// check-in only; a new consent version asks again. The check-ins the
// browser sent are what the staff API returns.
func TestBrowserCheckInAndConsent(t *testing.T) {
	b := &page{ctx: startBrowser(t)}
	n := testNode(t)
	program, _ := tenants()
	telehealthProgram(t, n, program, "v1")
	link := func(sub, name string, role rooms.Role, room string) string {
		return n.url + "/join#token=" + programToken(t, n, program, sub, name, role, room)
	}

	room, room2 := uniqueRoom("ci-first"), uniqueRoom("ci-later")
	// Each part closes its tabs when it ends (the machine is small).
	t.Run("first session: consent, then check-in", func(t *testing.T) {
		ther := openLink(t, b, n, link("t1", "Dana", rooms.RoleTherapist, room), 1280, 800)
		joinAndWait(t, ther, "")
		alex := openLink(t, b, n, link("c1", "Alex", rooms.RoleClient, room), 390, 844)
		waitForText(t, alex, "Telehealth consent")
		waitFor(t, alex, "the consent text, as text", `document.querySelector('[data-consent-text]').innerText.includes('Consent text v1.') && document.querySelectorAll('[data-consent-text] p').length === 2`)
		waitFor(t, alex, "the camera off during consent", cameraOff)
		saveArtifact(t, alex, "checkin-consent.png")
		click(t, alex, `[data-view="consent"] button[type="submit"]`)
		waitFor(t, alex, "a request to tick the box", `!document.querySelector('[data-consent-error]').hidden`)
		click(t, alex, `[data-consent-agree]`)
		click(t, alex, `[data-view="consent"] button[type="submit"]`)
		waitForText(t, alex, "Check in for this session")
		waitFor(t, alex, "the camera off during check-in", cameraOff)
		saveArtifact(t, alex, "checkin-form.png")
		click(t, alex, `[data-view="checkin"] button[type="submit"]`)
		waitFor(t, alex, "what is missing", `document.querySelector('[data-checkin-error]').textContent === 'Choose where you are right now.'`)
		fillCheckIn(t, alex, "NY", "", true, "555")
		waitFor(t, alex, "a phone too short", `document.querySelector('[data-checkin-error]').textContent.startsWith('Enter a phone number of 7 to 15 digits')`)
		saveArtifact(t, alex, "checkin-form-error.png")
		fillCheckIn(t, alex, "NY", "", true, checkInPhone)
		waitFor(t, alex, "the device check", `document.body.dataset.state === 'prejoin'`)
		saveArtifact(t, alex, "checkin-prejoin.png")
		joinAndWait(t, alex, "You are in the waiting room")
		saveArtifact(t, alex, "checkin-waiting.png")

		waitFor(t, ther, "Alex's check-in in the waiting list", waitingCheckIn+` === 'In New York · private place · callback +1 (555) 014-7391'`)
		saveArtifact(t, ther, "checkin-therapist-waiting.png")
		admit(t, ther, "Alex")
		waitFor(t, alex, "the call", `document.body.dataset.state === 'call'`)
		waitFor(t, ther, "Alex's check-in in the participant list", `document.querySelector('[data-present] li [data-checkin]:not([hidden])')?.textContent === 'In New York · private place · callback +1 (555) 014-7391'`)
		saveArtifact(t, ther, "checkin-therapist-call.png")
		saveArtifact(t, alex, "checkin-client-call.png")
		if err := step(alex, chromedp.Reload()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, alex, "back in the call after a reload, without a new check-in", `document.body.dataset.state === 'call'`)
		checkConsole(t, ther, alex)
	})

	// A later session: the check-in only, in a new tab (nothing kept).
	t.Run("later session: check-in only", func(t *testing.T) {
		ther2 := openLink(t, b, n, link("t1", "Dana", rooms.RoleTherapist, room2), 1280, 800)
		joinAndWait(t, ther2, "")
		later := openLink(t, b, n, link("c1", "Alex", rooms.RoleClient, room2), 1280, 800)
		waitForText(t, later, "Check in for this session")
		if shown, _ := evaluate[bool](later, consentShown); shown {
			t.Errorf("a later session asked for the consent again")
		}
		if v, _ := evaluate[string](later, `document.querySelector('[data-checkin-phone]').value`); v != "" {
			t.Errorf("a new tab offers the last phone %q: it is kept for its own tab only", v)
		}
		fillCheckIn(t, later, "other", "Toronto, Canada", false, "416.555.0100 ext 12")
		waitFor(t, later, "the device check", `document.body.dataset.state === 'prejoin'`)
		joinAndWait(t, later, "You are in the waiting room")
		waitFor(t, ther2, "a check-in that is not private, said so", waitingCheckIn+` === 'In Toronto, Canada · NOT in a private place · callback 416.555.0100 ext 12' && document.querySelector('[data-waiting-people] [data-checkin]').classList.contains('not-private')`)
		saveArtifact(t, ther2, "checkin-therapist-not-private.png")
		checkConsole(t, ther2, later)
	})

	// What the staff API returns is what the browser sent.
	staff := programToken(t, n, program, "s1", "Case manager", rooms.RoleStaff, token.AnyRoom)
	for r, want := range map[string]string{room: `"location":"NY","name":"Alex","phone":"+1 (555) 014-7391","private":true`, room2: `"location":"other","name":"Alex","other":"Toronto, Canada","phone":"416.555.0100 ext 12","private":false`} {
		status, body := api(t, n, "GET", "/v1/programs/"+program+"/rooms/"+r+"/checkins", staff, nil)
		raw, _ := json.Marshal(body)
		if status != http.StatusOK || !strings.Contains(string(raw), want) {
			t.Errorf("check-ins of %s: %d %s, want %s", r, status, raw, want)
		}
	}

	// A new version of the consent: asked again before the check-in.
	telehealthProgram(t, n, program, "v2")
	room3 := uniqueRoom("ci-v2")
	again := openLink(t, b, n, link("c1", "Alex", rooms.RoleClient, room3), 1280, 800)
	waitForText(t, again, "Telehealth consent")
	waitFor(t, again, "the new text", `document.querySelector('[data-consent-text]').innerText.includes('Consent text v2.') && document.querySelector('[data-consent-version]').textContent === 'Version v2'`)
	click(t, again, `[data-consent-agree]`)
	click(t, again, `[data-view="consent"] button[type="submit"]`)
	waitForText(t, again, "Check in for this session")
	status, body := api(t, n, "GET", "/v1/programs/"+program+"/consents", staff, nil)
	raw, _ := json.Marshal(body)
	if status != http.StatusOK || !strings.Contains(string(raw), `"version":"v2"`) || !strings.Contains(string(raw), `"version":"v1"`) {
		t.Errorf("consents after v2: %d %s, want v1 and v2 of c1", status, raw)
	}
	checkConsole(t, again)
}

// TestBrowserScreens (issue 16, acceptance 3): the screens the other
// browser tests do not reach, saved in a phone and a desktop viewport
// when IOP_ARTIFACT_DIR is set: the join page of a scheduled session with
// the person's next sessions, the staff dashboard, and a used invitation.
func TestBrowserScreens(t *testing.T) {
	if testing.Short() {
		t.Skip("browser")
	}
	b := &page{ctx: startBrowser(t)}
	n := testNode(t)
	s := seedBrowserSchedule(t, n)

	client := openLink(t, b, n, n.url+"/join#token="+programToken(t, n, s.program, "c1", "Alex", rooms.RoleClient, s.day), 1280, 800)
	waitFor(t, client, "the next sessions", `!document.querySelector('[data-next-sessions]').hidden`)
	saveArtifact(t, client, "screen-prejoin-schedule.png")

	staff := openLink(t, b, n, n.url+"/staff#token="+programToken(t, n, s.program, "s1", "Billing", rooms.RoleStaff, token.AnyRoom), 1280, 800)
	waitFor(t, staff, "the dashboard", `document.body.dataset.state === 'dashboard' || !document.querySelector('[data-view="dashboard"]').hidden`)
	time.Sleep(time.Second) // its rows load
	saveArtifact(t, staff, "screen-staff-dashboard.png")

	// A family invitation, used: refused before the camera.
	fam := uniqueRoom("screen-fam")
	tc := tokenClaims("t1", "Dana", rooms.RoleTherapist, fam)
	tc.Kind = rooms.KindFamily
	ther, err := n.minter.Mint(tc, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rawJoin(t, n, ther)
	status, inv := api(t, n, "POST", "/v1/rooms/"+fam+"/invites", ther, map[string]any{"name": "Alex's mother"})
	if status != http.StatusCreated {
		t.Fatalf("invite: %d %v", status, inv)
	}
	invite, _ := inv["url"].(string)
	if invite == "" {
		t.Fatalf("an invitation without its url")
	}
	first := openLink(t, b, n, invite, 1280, 800)
	joinAndWait(t, first, "You are in the waiting room")
	used := openLink(t, b, n, invite, 390, 844)
	waitFor(t, used, "the refusal, camera off", `document.body.dataset.state === 'message' && `+cameraOff)
	saveArtifact(t, used, "screen-invitation-used.png")
	checkConsole(t, client, staff)
}
