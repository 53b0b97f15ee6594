package main

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"iop/rooms"
)

// TestBrowserHostHandOver: in real Chromium, a co-therapist's console
// offers Mute and Remove for the client but not for the host, and no End;
// the host hands over with Make host, and the two consoles swap.
func TestBrowserHostHandOver(t *testing.T) {
	browser := startBrowser(t)
	n := testNode(t)
	room := uniqueRoom("host")
	people := []struct {
		sub, name string
		role      rooms.Role
	}{
		{"therapist-1", "Dana", rooms.RoleTherapist},
		{"therapist-2", "Kim", rooms.RoleTherapist},
		{"client-1", "Alex", rooms.RoleClient},
	}
	tabs := make([]*page, len(people))
	for i, p := range people {
		tabs[i] = newTab(t, browser)
		link := n.url + "/join#token=" + n.joinToken(t, p.sub, p.name, p.role, room)
		if err := step(tabs[i], chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`video[data-local]`))); err != nil {
			t.Fatalf("page %d: open the join link: %v", i+1, err)
		}
	}
	dana, kim, alex := tabs[0], tabs[1], tabs[2]
	for _, tab := range []*page{dana, kim} {
		click(t, tab, `[data-action="join"]`)
		if err := step(tab, chromedp.WaitVisible(chromedp.CSS(`[data-console]`))); err != nil {
			t.Fatalf("a therapist's page shows no console: %v", err)
		}
	}
	click(t, alex, `[data-action="join"]`)
	waitForText(t, alex, "You are in the waiting room")
	admit(t, kim, "Alex") // a co-therapist admits
	waitForEachOther(t, tabs)
	danaID, kimID, alexID := probe(dana).Self, probe(kim).Self, probe(alex).Self

	shown := func(tab *page, action, id string) string {
		return fmt.Sprintf(`(() => { const b = document.querySelector('[data-present] [data-action=%q][data-participant=%q]'); return !!b && !b.hidden; })()`, action, id)
	}
	hidden := func(tab *page, action, id string) string { return "!" + shown(tab, action, id) }
	endShown := `!document.querySelector('[data-view="call"] [data-action="end"]').hidden`

	waitFor(t, kim, "Mute for the client", shown(kim, "mute-audio", alexID))
	waitFor(t, kim, "no Mute for the host", hidden(kim, "mute-audio", danaID))
	waitFor(t, kim, "no Remove for the host", hidden(kim, "remove", danaID))
	waitFor(t, kim, "no Make host", hidden(kim, "make-host", danaID))
	waitFor(t, kim, "no End while the host is there", "!"+endShown)
	waitFor(t, dana, "Remove for the co-therapist", shown(dana, "remove", kimID))
	waitFor(t, dana, "Make host for the co-therapist", shown(dana, "make-host", kimID))
	waitFor(t, dana, "End for the host", endShown)
	saveArtifact(t, kim, "co-therapist-console.png")

	click(t, dana, fmt.Sprintf(`[data-present] [data-action="make-host"][data-participant=%q]`, kimID))
	waitFor(t, kim, "the hand-over announced", `document.body.innerText.includes('You are now the host of this session.')`)
	waitFor(t, kim, "End for the new host", endShown)
	waitFor(t, kim, "Remove for the old host", shown(kim, "remove", danaID))
	waitFor(t, dana, "no End for the old host", "!"+endShown)
	waitFor(t, dana, "no Remove for the new host", hidden(dana, "remove", kimID))
	saveArtifact(t, dana, "old-host-console.png")
	checkConsole(t, tabs...)
}
