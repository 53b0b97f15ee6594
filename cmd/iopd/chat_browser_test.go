package main

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"iop/rooms"
)

// TestBrowserChatAndAutoAdmit: in real Chromium, the therapist lets people
// in automatically (the next client skips the waiting room), a client's
// message shows on the therapist's page as text (markup stays text), the
// therapist removes it for everyone and turns chat off for clients.
func TestBrowserChatAndAutoAdmit(t *testing.T) {
	browser := startBrowser(t)
	n := testNode(t)
	room := uniqueRoom("chat")
	open := func(sub, name string, role rooms.Role) *page {
		tab := newTab(t, browser)
		link := n.url + "/join#token=" + n.joinToken(t, sub, name, role, room)
		if err := step(tab, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`video[data-local]`))); err != nil {
			t.Fatalf("%s: open the join link: %v", name, err)
		}
		return tab
	}
	dana := open("therapist-1", "Dana", rooms.RoleTherapist)
	click(t, dana, `[data-action="join"]`)
	if err := step(dana, chromedp.WaitVisible(chromedp.CSS(`[data-console]`))); err != nil {
		t.Fatalf("no console: %v", err)
	}
	click(t, dana, `[data-action="auto-admit"]`)
	waitFor(t, dana, "auto-admission on", `document.querySelector('[data-action="auto-admit"]').getAttribute('aria-pressed') === 'true'`)
	alex := open("client-1", "Alex", rooms.RoleClient)
	click(t, alex, `[data-action="join"]`)
	waitFor(t, alex, "the call without the waiting room", `!document.querySelector('[data-view="call"]').hidden`)

	const markup = `<img src=x onerror="window.__pwned=1">I had a hard week`
	click(t, alex, `[data-chat-toggle]`)
	if err := step(alex, chromedp.SendKeys(chromedp.CSS(`[data-chat-text]`), markup)); err != nil {
		t.Fatal(err)
	}
	click(t, alex, `[data-chat-form] button[type="submit"]`)
	waitFor(t, dana, "the unread count", `document.querySelector('[data-chat-toggle]').textContent.includes('1 new')`)
	click(t, dana, `[data-chat-toggle]`)
	waitFor(t, dana, "Alex's message as text", fmt.Sprintf(`[...document.querySelectorAll('.chat-text')].some((p) => p.textContent === %q) && !window.__pwned && !document.querySelector('.chat-list img')`, markup))
	saveArtifact(t, dana, "chat-therapist.png")
	click(t, dana, `.chat-remove`)
	waitFor(t, alex, "the message removed", `document.querySelector('.chat-text').textContent === 'This message was removed.'`)
	click(t, dana, `[data-chat-switch]`)
	waitFor(t, alex, "chat off", `document.querySelector('[data-chat-text]').disabled && document.querySelector('[data-chat-state]').textContent.includes('turned chat off')`)
	saveArtifact(t, alex, "chat-client-off.png")
	checkConsole(t, dana, alex)
}
