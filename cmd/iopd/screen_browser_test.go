package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"iop/rooms"
)

// screenPlaying is true once the large tile of the stage plays the screen
// of the participant named: at least minFrames new frames, and drawn large.
func screenPlaying(name string) string {
	return fmt.Sprintf(`(() => {
  const stage = document.querySelector('[data-stage]');
  const fig = document.querySelector('[data-featured] [data-screen-tile]');
  if (stage.dataset.layout !== 'screen' || !fig || !fig.querySelector('.label-name').textContent.includes(%q)) return false;
  const v = fig.querySelector('video');
  if (!v.srcObject) return false;
  if (v.__frames === undefined) {
    v.__frames = 0;
    const count = () => { v.__frames++; v.requestVideoFrameCallback(count); };
    v.requestVideoFrameCallback(count);
  }
  return v.__frames >= %d && v.videoWidth > 0 && fig.clientWidth >= 600;
})()`, name, minFrames)
}

// screenState describes the large tile's video, for a failure message.
const screenState = `(() => {
  const v = document.querySelector('[data-screen-tile] video');
  if (!v) return 'no screen tile';
  const tracks = v.srcObject ? v.srcObject.getTracks().map((t) => t.kind + ':' + t.readyState + (t.muted ? ':muted' : '')).join(',') : 'none';
  return 'layout ' + document.querySelector('[data-stage]').dataset.layout + ', tracks ' + tracks + ', frames ' + v.__frames + ', ' + v.videoWidth + 'x' + v.videoHeight + ', readyState ' + v.readyState + ', paused ' + v.paused;
})()`

// rtpState sums up a page's video RTP statistics, for a failure message.
const rtpState = `(async () => {
  const out = [];
  for (const pc of window.__iop.peerConnections()) {
    (await pc.getStats()).forEach((r) => {
      if (r.kind !== 'video') return;
      if (r.type === 'outbound-rtp') out.push('out ' + r.mid + ' ' + (r.rid || '') + ' ' + r.frameWidth + 'x' + r.frameHeight + ' fps ' + r.framesPerSecond + ' enc ' + r.framesEncoded + ' key ' + r.keyFramesEncoded + ' limit ' + r.qualityLimitationReason + ' pli ' + r.pliCount + ' nack ' + r.nackCount);
      if (r.type === 'inbound-rtp') out.push('in ' + r.trackIdentifier.slice(0, 8) + ' ' + r.frameWidth + 'x' + r.frameHeight + ' dec ' + r.framesDecoded + ' recv ' + r.framesReceived + ' drop ' + r.framesDropped + ' key ' + r.keyFramesDecoded + ' pli ' + r.pliCount + ' nack ' + r.nackCount + ' lost ' + r.packetsLost + ' pkts ' + r.packetsReceived);
    });
  }
  return out.join('; ');
})()`

// rtpOf reads rtpState on a page.
func rtpOf(p *page) string {
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](rtpState, chromedp.EvalAwaitPromise))
	if err != nil {
		return err.Error()
	}
	return s
}

// waitScreen waits until the page plays name's screen in the large tile.
func waitScreen(t *testing.T, tab, presenter *page, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, mediaTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](screenPlaying(name), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		state, _ := evaluate[string](tab, screenState)
		t.Fatalf("%s's screen never played in the large tile (%v): %s; this page: %s; the presenter's: %s", name, err, state, rtpOf(tab), rtpOf(presenter))
	}
}

// inGrid is true once the stage shows everyone alike again.
const inGrid = `document.querySelector('[data-stage]').dataset.layout === 'grid' && !document.querySelector('[data-featured] .tile')`

// threeInACall opens a therapist (Dana) and two clients (Alex, Sam) in a
// room with their cameras off, and waits until each page has the three tiles.
func threeInACall(t *testing.T) (dana, alex, sam *page) {
	t.Helper()
	browser := startBrowser(t)
	n := testNode(t)
	room := uniqueRoom("screen")
	open := func(sub, name string, role rooms.Role) *page {
		tab := newTab(t, browser)
		link := n.url + "/join#token=" + n.joinToken(t, sub, name, role, room)
		if err := step(tab, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`video[data-local]`))); err != nil {
			t.Fatalf("%s: open the join link: %v", name, err)
		}
		// Cameras off: the screen is the one video to encode and decode,
		// which keeps three pages within what a busy test machine renders.
		click(t, tab, `.controls-prejoin [data-action="toggle-video"]`)
		return tab
	}
	dana = open("therapist-1", "Dana", rooms.RoleTherapist)
	click(t, dana, `[data-action="join"]`)
	if err := step(dana, chromedp.WaitVisible(chromedp.CSS(`[data-console]`))); err != nil {
		t.Fatalf("no console: %v", err)
	}
	click(t, dana, `[data-action="auto-admit"]`)
	waitFor(t, dana, "auto-admission on", `document.querySelector('[data-action="auto-admit"]').getAttribute('aria-pressed') === 'true'`)
	alex = open("client-1", "Alex", rooms.RoleClient)
	click(t, alex, `[data-action="join"]`)
	sam = open("client-2", "Sam", rooms.RoleClient)
	click(t, sam, `[data-action="join"]`)
	for _, tab := range []*page{dana, alex, sam} {
		waitFor(t, tab, "three tiles", `document.querySelectorAll('[data-tiles] .tile').length === 3`)
	}
	return dana, alex, sam
}

// tileID returns the participant id of the tile named name on a page.
func tileID(t *testing.T, tab *page, name string) string {
	t.Helper()
	id, err := evaluate[string](tab, fmt.Sprintf(`(() => {
  const el = [...document.querySelectorAll('[data-tile]')].find((el) => el.querySelector('[data-name]').textContent === %q);
  return el ? el.dataset.tile : '';
})()`, name))
	if err != nil || id == "" {
		t.Fatalf("no tile of %s: %v", name, err)
	}
	return id
}

// TestBrowserScreenShare (issue 15, acceptance 1) in real Chromium with a
// fake screen: the therapist shares and every client page plays the
// screen in the large tile, the people as a strip; a client has no share
// button until the therapist lets clients share, and a client's share
// while the therapist shares is refused; stopping the share (the button,
// or the browser's own "Stop sharing") restores the grid everywhere. Then
// the spotlight: the therapist spotlights a client for everyone, a client
// pins someone else for themself only, and ending the spotlight restores
// the grid.
func TestBrowserScreenShare(t *testing.T) {
	dana, alex, sam := threeInACall(t)
	all := []*page{dana, alex, sam}
	waitFor(t, alex, "no share button for a client", `document.querySelector('[data-screen-share]').hidden`)

	// The therapist shares: every client plays it large, the people in a strip.
	click(t, dana, `[data-screen-share]`)
	waitFor(t, dana, "the share button pressed", `document.querySelector('[data-screen-share]').getAttribute('aria-pressed') === 'true'`)
	for _, tab := range []*page{alex, sam} {
		waitScreen(t, tab, dana, "Dana")
		waitFor(t, tab, "the people as a strip", `[...document.querySelectorAll('[data-tiles] .tile')].every((el) => el.clientWidth <= 170) && document.querySelectorAll('[data-tiles] .tile').length === 3`)
	}
	saveArtifact(t, alex, "screen-client-sees-therapist.png")

	// Clients may share once let, one share at a time.
	click(t, dana, `[data-screen-allow]`)
	waitFor(t, alex, "the share button once let", `!document.querySelector('[data-screen-share]').hidden`)
	click(t, alex, `[data-screen-share]`)
	waitFor(t, alex, "the refusal while Dana shares", `!document.querySelector('[data-notice]').hidden && document.querySelector('[data-notice-text]').textContent.includes('Someone else is sharing') && document.querySelector('[data-screen-share]').getAttribute('aria-pressed') === 'false'`)
	click(t, dana, `[data-screen-share]`) // Stop sharing
	for _, tab := range all {
		waitFor(t, tab, "the grid after the share", inGrid)
	}
	click(t, alex, `[data-screen-share]`)
	for _, tab := range []*page{dana, sam} {
		waitScreen(t, tab, alex, "Alex")
	}
	saveArtifact(t, dana, "screen-therapist-sees-client.png")
	zoomScreenshot(t, sam, "screen-client-zoom.png")
	// The browser's own "Stop sharing" ends the capture.
	if _, err := evaluate[any](alex, `window.__iop.endCapture()`); err != nil {
		t.Fatal(err)
	}
	for _, tab := range all {
		waitFor(t, tab, "the grid after the browser stopped the share", inGrid)
	}

	// The spotlight: the therapist's, for everyone; a pin, for oneself.
	waitFor(t, alex, "no spotlight button for a client", `[...document.querySelectorAll('[data-spotlight]')].every((b) => b.hidden)`)
	samID := tileID(t, dana, "Sam")
	click(t, dana, fmt.Sprintf(`[data-tile=%q] [data-spotlight]`, samID))
	spotlit := func(id string) string {
		return fmt.Sprintf(`document.querySelector('[data-stage]').dataset.layout === 'spotlight' && document.querySelector('[data-featured] [data-tile]')?.dataset.tile === %q`, id)
	}
	for _, tab := range []*page{dana, alex} {
		waitFor(t, tab, "Sam in the spotlight", spotlit(samID))
	}
	danaID := tileID(t, alex, "Dana")
	click(t, alex, fmt.Sprintf(`[data-tile=%q] [data-pin]`, danaID))
	waitFor(t, alex, "Dana pinned", spotlit(danaID))
	saveArtifact(t, alex, "spotlight-client-pinned.png")
	waitFor(t, dana, "the pin is Alex's own", spotlit(samID))
	click(t, alex, fmt.Sprintf(`[data-tile=%q] [data-pin]`, danaID))
	waitFor(t, alex, "back to the spotlight after unpinning", spotlit(samID))
	click(t, dana, fmt.Sprintf(`[data-tile=%q] [data-spotlight]`, samID))
	for _, tab := range all {
		waitFor(t, tab, "the grid after the spotlight", inGrid)
	}

	checkConsole(t, all...)
}
