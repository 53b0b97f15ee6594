package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"iop/rooms"
	"iop/signaling/token"
)

// The session as people live it (issue 16): every screen has a way forward,
// a reload lands where the person was, a link that cannot work is refused
// before the camera turns on, and the therapist hears who was turned away.

// openLink opens a person's join link in a fresh tab of the size given.
func openLink(t *testing.T, browser *page, n *node, link string, w, h int64) *page {
	t.Helper()
	tab := newTab(t, browser.ctx)
	if err := step(tab, chromedp.EmulateViewport(w, h), chromedp.Navigate(link)); err != nil {
		t.Fatalf("open %s: %v", n.url, err)
	}
	return tab
}

// cameraOff is true while the page has not started the camera.
const cameraOff = `!document.querySelector('video[data-local]').srcObject`

// pageShown is true while the page's body is visible.
const pageShown = `!document.body.hidden && document.querySelector('main').getBoundingClientRect().height > 0`

// joinAndWait clicks Join and waits for the call or the waiting room.
func joinAndWait(t *testing.T, tab *page, heading string) {
	t.Helper()
	click(t, tab, `[data-action="join"]`)
	if heading == "" {
		waitFor(t, tab, "the call", `document.body.dataset.state === 'call'`)
		return
	}
	waitForText(t, tab, heading)
}

func TestBrowserUX(t *testing.T) {
	b := &page{ctx: startBrowser(t)}
	n := testNode(t)
	link := func(sub, name string, role rooms.Role, room string) string {
		return n.url + "/join#token=" + n.joinToken(t, sub, name, role, room)
	}

	t.Run("end and then the link again", func(t *testing.T) {
		room := uniqueRoom("ux-end")
		ther := openLink(t, b, n, link("t1", "Dana", rooms.RoleTherapist, room), 1280, 800)
		joinAndWait(t, ther, "")
		alex := openLink(t, b, n, link("c1", "Alex", rooms.RoleClient, room), 1280, 800)
		joinAndWait(t, alex, "You are in the waiting room")
		admit(t, ther, "Alex")
		waitFor(t, alex, "the call", `document.body.dataset.state === 'call'`)
		click(t, alex, `[data-view="call"] [data-action="hand"]`)
		waitFor(t, alex, "aria-pressed on the raised hand", `document.querySelector('[data-view="call"] [data-action="hand"]').getAttribute('aria-pressed') === 'true'`)
		click(t, alex, `[data-view="call"] [data-action="hand"]`)
		waitFor(t, alex, "aria-pressed off again", `document.querySelector('[data-view="call"] [data-action="hand"]').getAttribute('aria-pressed') === 'false'`)
		time.Sleep(time.Second) // a little attendance
		click(t, ther, `[data-view="call"] [data-action="end"]`)
		click(t, ther, `dialog[data-dialog="end"] [data-dialog-confirm]`)
		waitForText(t, ther, "The session has ended")
		waitFor(t, ther, "the therapist's page, not a blank one", pageShown)
		saveArtifact(t, ther, "ux-ended-therapist.png")
		waitForText(t, alex, "The session has ended")
		waitFor(t, alex, "My week", `!document.querySelector('[data-message-week]').hidden && document.querySelector('[data-message-week] .week-words') !== null`)
		words, _ := evaluate[string](alex, `document.querySelector('[data-message-week]').innerText`)
		if want := "There is still time to reach your goal"; !strings.Contains(words, want) || strings.Contains(words, "Well done") {
			t.Errorf("a few seconds of a 9 h week read %q: want %q and no praise", words, want)
		}
		saveArtifact(t, alex, "ux-ended-client.png")

		// The same link after the end: told so, before the camera.
		late := openLink(t, b, n, link("c1", "Alex", rooms.RoleClient, room), 390, 844)
		waitForText(t, late, "This session has ended")
		waitFor(t, late, "the camera still off", cameraOff)
		saveArtifact(t, late, "ux-ended-late-phone.png")
		checkConsole(t, ther, alex, late)
	})

	t.Run("leave a one-to-one", func(t *testing.T) {
		room := uniqueRoom("ux-leave")
		tok := n.joinToken(t, "t1", "Dana", rooms.RoleTherapist, room)
		ther := openLink(t, b, n, n.url+"/join#token="+tok, 1280, 800)
		joinAndWait(t, ther, "")
		alex := openLink(t, b, n, link("c2", "Alex", rooms.RoleClient, room), 1280, 800)
		joinAndWait(t, alex, "You are in the waiting room")
		admit(t, ther, "Alex")
		waitFor(t, alex, "the call", `document.body.dataset.state === 'call'`)
		click(t, ther, `[data-view="call"] [data-action="leave"]`)
		waitForText(t, ther, "You left the session")
		waitFor(t, ther, "the therapist's page, not a blank one", pageShown)
		saveArtifact(t, ther, "ux-left-therapist.png")
		checkConsole(t, ther, alex)
	})

	t.Run("reload in the waiting room and in the call", func(t *testing.T) {
		room := uniqueRoom("ux-reload")
		ther := openLink(t, b, n, link("t1", "Dana", rooms.RoleTherapist, room), 1280, 800)
		joinAndWait(t, ther, "")
		alex := openLink(t, b, n, link("c3", "Alex", rooms.RoleClient, room), 1280, 800)
		joinAndWait(t, alex, "You are in the waiting room")
		if err := step(alex, chromedp.Reload()); err != nil {
			t.Fatal(err)
		}
		waitForText(t, alex, "You are in the waiting room")
		admit(t, ther, "Alex")
		waitFor(t, alex, "the call", `document.body.dataset.state === 'call'`)
		if err := step(alex, chromedp.Reload()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, alex, "back in the call without the waiting room", `document.body.dataset.state === 'call' && !document.querySelector('[data-waiting-people] li')`)
		waitFor(t, ther, "nobody waiting at the therapist's", `document.querySelectorAll('[data-waiting-people] li').length === 0`)
		saveArtifact(t, alex, "ux-reloaded-call.png")

		// The staff dashboard keeps its link for the tab too.
		staff := openLink(t, b, n, n.url+"/staff#token="+n.joinToken(t, "s1", "Billing", rooms.RoleStaff, token.AnyRoom), 1280, 800)
		waitFor(t, staff, "the dashboard", `!document.querySelector('[data-view="no-token"]') || document.querySelector('[data-view="no-token"]').hidden`)
		if err := step(staff, chromedp.Reload()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		waitFor(t, staff, "the dashboard after a reload", `document.querySelector('[data-view="no-token"]').hidden`)
		checkConsole(t, ther, alex, staff)
	})

	t.Run("links refused before the camera", func(t *testing.T) {
		expired, err := n.minter.Mint(tokenClaims("c1", "Alex", rooms.RoleClient, "ux-refused"), -time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		other, err := token.NewMinter(token.Config{Secret: []byte("another-secret-another-secret-0123456789")}).Mint(tokenClaims("c1", "Alex", rooms.RoleClient, "ux-refused"), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ name, tok, want string }{
			{"expired", expired, "This join link has expired"},
			{"wrong key", other, "This join link does not work"},
			{"garbage", "not.a-valid.jwt", "This join link does not work"},
		} {
			tab := openLink(t, b, n, n.url+"/join#token="+c.tok, 390, 844)
			waitForText(t, tab, c.want)
			waitFor(t, tab, "the camera never on", cameraOff)
			saveArtifact(t, tab, fmt.Sprintf("ux-refused-%s-phone.png", c.name[:4]))
			checkConsole(t, tab)
		}
	})

	t.Run("turned away and denied", func(t *testing.T) {
		room := uniqueRoom("ux-door")
		ther := openLink(t, b, n, link("t1", "Dana", rooms.RoleTherapist, room), 1280, 800)
		joinAndWait(t, ther, "")
		sam := openLink(t, b, n, link("c5", "Sam", rooms.RoleClient, room), 1280, 800)
		joinAndWait(t, sam, "You are in the waiting room")
		click(t, ther, `[data-waiting-people] [data-action="deny"]`)
		waitForText(t, sam, "Your therapist could not let you in this time")
		waitFor(t, ther, "the status line after Deny", `document.querySelector('[data-status]').textContent === 'Sam was not let in.'`)
		click(t, ther, `[data-action="lock"]`)
		waitFor(t, ther, "the room locked", `document.querySelector('[data-action="lock"]').textContent.includes('Unlock')`)
		kim := openLink(t, b, n, link("c6", "Kim", rooms.RoleClient, room), 1280, 800)
		joinAndWait(t, kim, "This session is closed to new arrivals")
		waitFor(t, ther, "who was turned away", `document.querySelector('[data-turned-away]:not([hidden])')?.textContent.startsWith('Kim tried to join, but the room is locked.')`)
		saveArtifact(t, ther, "ux-turned-away.png")
		checkConsole(t, ther, sam, kim)
	})

	t.Run("phone", func(t *testing.T) {
		room := uniqueRoom("ux-phone")
		ther := openLink(t, b, n, link("t1", "Dana", rooms.RoleTherapist, room), 1280, 800)
		joinAndWait(t, ther, "")
		alex := openLink(t, b, n, link("c7", "Alex", rooms.RoleClient, room), 390, 844)
		waitFor(t, alex, "the preview", `!!document.querySelector('video[data-local]').srcObject`)
		waitFor(t, alex, "Join on the first screen", `(() => { const r = document.querySelector('[data-action="join"]').getBoundingClientRect(); return r.height > 0 && r.bottom <= innerHeight; })()`)
		saveArtifact(t, alex, "ux-prejoin-phone.png")
		joinAndWait(t, alex, "You are in the waiting room")
		saveArtifact(t, alex, "ux-waiting-phone.png")
		admit(t, ther, "Alex")
		waitFor(t, alex, "a small self-view in a one-to-one", `(() => { const s = document.querySelector('.tile-self'); return document.querySelectorAll('[data-tiles] .tile').length === 2 && s.getBoundingClientRect().width < innerWidth * 0.35; })()`)
		saveArtifact(t, alex, "ux-call-phone.png")
		checkConsole(t, ther, alex)
	})
}
