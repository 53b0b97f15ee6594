package main

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"iop/rooms"
)

// TestBrowserBreakouts: in real Chromium, the therapist splits two clients
// into two breakout rooms with a timer from the console; the client's page
// says which breakout it is in and the time left, and shows only its own
// group's tiles; the therapist moves the other client in and visits from
// the console, then brings everyone back, which restores the whole grid;
// rooms opened to fill by hand leave everyone in the main room.
func TestBrowserBreakouts(t *testing.T) {
	browser := startBrowser(t)
	n := testNode(t)
	room := uniqueRoom("breakout")
	open := func(sub, name string, role rooms.Role) *page {
		tab := newTab(t, browser)
		link := n.url + "/join#token=" + n.joinToken(t, sub, name, role, room)
		if err := step(tab, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`video[data-local]`))); err != nil {
			t.Fatalf("%s: open the join link: %v", name, err)
		}
		click(t, tab, `[data-action="join"]`)
		return tab
	}
	dana := open("therapist-1", "Dana", rooms.RoleTherapist)
	if err := step(dana, chromedp.WaitVisible(chromedp.CSS(`[data-breakout-console]`))); err != nil {
		t.Fatalf("no breakout controls in the console: %v", err)
	}
	click(t, dana, `[data-action="auto-admit"]`)
	waitFor(t, dana, "auto-admission on", `document.querySelector('[data-action="auto-admit"]').getAttribute('aria-pressed') === 'true'`)
	alex := open("client-1", "Alex", rooms.RoleClient)
	waitFor(t, alex, "the call", `!document.querySelector('[data-view="call"]').hidden`)
	sam := joinPeer(t, n, "sam", rooms.RoleClient, room)
	const tiles = `[...document.querySelectorAll('[data-tiles] [data-tile]')].filter((el) => !el.hidden).length`
	waitFor(t, alex, "three tiles", tiles+` === 3`)
	waitFor(t, alex, "no breakout controls for a client", `document.querySelector('[data-breakout-console]').hidden && document.querySelector('[data-breakout-banner]').hidden`)

	// Two rooms, one minute: Alex (first in) goes to room 1, Sam to room 2.
	if err := step(dana, chromedp.SetValue(chromedp.CSS(`[data-breakout-rooms]`), "2"), chromedp.SetValue(chromedp.CSS(`[data-breakout-minutes]`), "1")); err != nil {
		t.Fatal(err)
	}
	click(t, dana, `[data-breakout-open]`)
	waitFor(t, alex, "the breakout banner with the time left",
		`(() => { const b = document.querySelector('[data-breakout-banner]'); return !b.hidden && b.textContent.includes('Breakout room 1') && /[01]:\d\d left/.test(b.textContent); })()`)
	waitFor(t, alex, "only Alex's own tile", tiles+` === 1`)
	waitFor(t, dana, "the rooms in the console", `document.querySelectorAll('[data-breakout-groups] > li').length === 3 && document.querySelector('[data-breakout-groups] > li[data-breakout-group="2"]').textContent.includes('sam')`)
	saveArtifact(t, alex, "breakout-client.png")

	// Dana moves Sam to room 1 and visits it.
	if _, err := evaluate[bool](dana, fmt.Sprintf(`(() => {
  const sel = document.querySelector('select[data-breakout-move=%q]');
  sel.value = '1';
  sel.dispatchEvent(new Event('change', { bubbles: true }));
  return true;
})()`, sam.ID())); err != nil {
		t.Fatal(err)
	}
	waitFor(t, alex, "Sam's tile in room 1", fmt.Sprintf(`document.querySelector('[data-tile=%q]')?.hidden === false`, sam.ID())+` && `+tiles+` === 2`)
	click(t, dana, `[data-breakout-visit="1"]`)
	waitFor(t, dana, "the visit banner", `document.querySelector('[data-breakout-banner]').textContent.includes('Breakout room 1 (visiting)')`)
	waitFor(t, alex, "the therapist's tile", tiles+` === 3`)
	saveArtifact(t, dana, "breakout-therapist.png")

	click(t, dana, `[data-breakout-close]`)
	waitFor(t, alex, "everyone back", `document.querySelector('[data-breakout-banner]').hidden && `+tiles+` === 3`)
	waitFor(t, dana, "the split controls again", `document.querySelector('[data-breakout-live]').hidden`)

	// Rooms to fill by hand: everyone stays in the main room until moved.
	click(t, dana, `[data-breakout-open-empty]`)
	waitFor(t, alex, "the main room banner", `(() => { const b = document.querySelector('[data-breakout-banner]'); return !b.hidden && b.textContent.includes('Main room'); })()`+` && `+tiles+` === 3`)
	waitFor(t, dana, "everyone listed in the main room", `document.querySelector('[data-breakout-groups] > li[data-breakout-group="0"]')?.querySelectorAll('.person').length === 3`)
	checkConsole(t, dana, alex)
}
