package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/alicebob/miniredis/v2"
	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"iop/rooms"
	"iop/rooms/schedule"
	"iop/signaling/token"
)

// The browser tests drive the real join page in headless Chromium against an
// in-process iopd. They skip when Chromium is missing unless
// IOP_REQUIRE_BROWSER=1, and in -short mode. With IOP_SCREENSHOT_DIR set,
// TestBrowserCall saves iop-prejoin.png, iop-waiting.png, iop-call.png,
// iop-console.png, iop-console-zoom.png (200% zoom) and iop-removed.png there;
// TestBrowserSchedule iop-join-sessions.png (and -zoom), iop-too-early.png and
// iop-wrong-track.png; TestBrowserDashboard iop-dashboard.png (and -zoom) and
// iop-dashboard-detail.png; TestBrowserSimulcast iop-simulcast.png (a large
// tile) and iop-simulcast-small.png (a small window). iop-console.png and
// iop-dashboard.png are always saved as artifacts: in IOP_ARTIFACT_DIR when
// set, else in a temporary directory whose path the test logs.

const (
	// mediaTimeout bounds how long three pages may take to see each other.
	mediaTimeout = 45 * time.Second
	// stepTimeout bounds one browser step: a navigation, a click, a probe.
	stepTimeout = 20 * time.Second
	// minFrames is how many new frames a remote video must present to count
	// as playing.
	minFrames = 10
)

// chromiumPath returns the Chromium to test with, or skips the test.
func chromiumPath(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped in -short mode")
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("IOP_REQUIRE_BROWSER") == "1" {
		t.Fatal("browser test: no Chromium at /usr/bin/chromium or on PATH, and IOP_REQUIRE_BROWSER=1")
	}
	t.Skip("browser test: no Chromium at /usr/bin/chromium or on PATH (set IOP_REQUIRE_BROWSER=1 to fail instead)")
	return ""
}

// startBrowser starts one headless Chromium with a fake camera and
// microphone for the test, with extra flags if any; open pages in it with
// newTab. It stops when the test ends.
func startBrowser(t testing.TB, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", "new"),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// chromedp replaces its own value: every disabled feature goes here.
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
	)
	opts = append(opts, extra...)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return browser
}

// page is one browser tab and what its console said.
type page struct {
	ctx context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// newTab opens a page of the browser in a window of its own, so that it is
// visible and renders video. Its console messages are kept for problems.
func newTab(t testing.TB, browser context.Context) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	p := &page{ctx: ctx}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		cancel()
		t.Fatalf("open a tab: %v", err)
	}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.console = append(p.console, m)
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return p
}

// problems returns the uncaught exceptions and console errors (such as
// Content-Security-Policy violations) of the page so far.
func (p *page) problems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, m := range p.console {
		if m.IsException() || m.Type == chromedp.ConsoleError {
			out = append(out, m.String())
		}
	}
	return out
}

// checkConsole fails the test for every problem a page's console reported.
func checkConsole(t *testing.T, pages ...*page) {
	t.Helper()
	for i, p := range pages {
		for _, msg := range p.problems() {
			t.Errorf("page %d console: %s", i+1, msg)
		}
	}
}

// step runs browser actions on a tab with stepTimeout.
func step(p *page, actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// evaluate runs a script on a tab with stepTimeout and decodes its result.
func evaluate[T any](p *page, script string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](script))
}

// saveScreenshot writes a screenshot of the tab to IOP_SCREENSHOT_DIR/name,
// when that is set.
func saveScreenshot(t *testing.T, p *page, name string) {
	t.Helper()
	dir := os.Getenv("IOP_SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
	}
}

// saveArtifact saves screenshots of the tab as PNG test artifacts in
// IOP_ARTIFACT_DIR, when set (nothing is written, nor taken, otherwise):
// every screen in a phone (390x844) and a desktop (1280x800) viewport, as
// name with "-phone" and "-desktop" before ".png". The tab is back in its
// own viewport afterwards.
func saveArtifact(t *testing.T, p *page, name string) {
	t.Helper()
	dir := os.Getenv("IOP_ARTIFACT_DIR")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("artifact %s: %v", name, err)
		return
	}
	size, err := evaluate[[]int64](p, `[innerWidth, innerHeight]`)
	if err != nil || len(size) != 2 {
		t.Errorf("artifact %s: the viewport: %v", name, err)
		return
	}
	base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, ".png"), "-phone"), "-desktop")
	for _, v := range []struct {
		suffix string
		w, h   int64
	}{{"-phone", 390, 844}, {"-desktop", 1280, 800}} {
		if err := step(p, chromedp.EmulateViewport(v.w, v.h)); err != nil {
			t.Errorf("artifact %s: %v", name, err)
			return
		}
		time.Sleep(300 * time.Millisecond) // the page lays itself out again
		ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			t.Errorf("screenshot %s: %v", name, err)
			return
		}
		path := filepath.Join(dir, base+v.suffix+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Errorf("artifact %s: %v", name, err)
			return
		}
		t.Logf("artifact: %s", path)
	}
	if err := step(p, chromedp.EmulateViewport(size[0], size[1])); err != nil {
		t.Errorf("artifact %s: back to the tab's viewport: %v", name, err)
	}
}

// audioScript reports, per remote participant whose tile plays a stream,
// the packetsReceived of the inbound-rtp of their audio track, read from
// the page's own PeerConnections; -1 when there is no audio track (yet).
const audioScript = `(async () => {
  const pcs = window.__iop.peerConnections();
  const out = {};
  for (const v of document.querySelectorAll('video[data-participant]')) {
    const a = v.srcObject && v.srcObject.getAudioTracks()[0];
    let n = -1;
    const r = a && pcs.flatMap((pc) => pc.getReceivers()).find((r) => r.track === a);
    if (r) {
      (await r.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'audio') n = s.packetsReceived; });
    }
    out[v.dataset.participant] = n;
  }
  return out;
})()`

// audioPackets reads audioScript on a page.
func audioPackets(p *page) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[map[string]int](audioScript, chromedp.EvalAwaitPromise))
}

// waitForAudio waits until every page has an audio track of each other
// participant whose inbound packets keep arriving.
func waitForAudio(t *testing.T, pages []*page) {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		before := make([]map[string]int, len(pages))
		for i, p := range pages {
			before[i], _ = audioPackets(p)
		}
		time.Sleep(700 * time.Millisecond)
		ok, why := true, ""
		for i, p := range pages {
			after, err := audioPackets(p)
			if err != nil || len(after) != len(pages)-1 {
				ok, why = false, fmt.Sprintf("page %d: %v %v", i+1, after, err)
				break
			}
			for id, n := range after {
				if n <= 0 || n <= before[i][id] {
					ok, why = false, fmt.Sprintf("page %d: audio packets of %s: %d then %d", i+1, id, before[i][id], n)
				}
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every page receives the others' audio: %s", why)
		}
	}
}

// checkSilent checks that, once settled, no more audio packets of
// participant id reach the pages.
func checkSilent(t *testing.T, id string, pages []*page) {
	t.Helper()
	time.Sleep(time.Second)
	before := make([]map[string]int, len(pages))
	for i, p := range pages {
		var err error
		if before[i], err = audioPackets(p); err != nil {
			t.Fatalf("page %d: audio packets: %v", i+1, err)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	for i, p := range pages {
		after, err := audioPackets(p)
		if err != nil {
			t.Fatalf("page %d: audio packets: %v", i+1, err)
		}
		if b, ok := before[i][id]; !ok || after[id] != b {
			t.Errorf("page %d: audio packets of muted %s went from %d to %d", i+1, id, b, after[id])
		}
	}
}

// visibleText is the text of the page's main area, for failure messages.
const visibleText = `document.querySelector('main').innerText.replace(/\s+/g, ' ').trim()`

// probeScript reports what a call page shows. On first sight of a remote
// video it starts counting the frames the video presents, with
// requestVideoFrameCallback; frames is the count since then.
const probeScript = `(() => {
  const counts = window.__iopFrames || (window.__iopFrames = new WeakMap());
  const videos = [...document.querySelectorAll('video[data-participant]')];
  const self = document.querySelector('video[data-local]').closest('[data-tile]');
  return {
    self: self ? self.dataset.tile : '',
    text: ` + visibleText + `,
    videos: videos.map((v) => {
      if (!counts.has(v)) {
        const c = { n: 0 };
        counts.set(v, c);
        const tick = () => { c.n++; v.requestVideoFrameCallback(tick); };
        v.requestVideoFrameCallback(tick);
      }
      return {
        id: v.dataset.participant,
        width: v.videoWidth,
        height: v.videoHeight,
        frames: counts.get(v).n,
        ready: v.readyState,
        paused: v.paused,
      };
    }),
  };
})()`

// remoteVideo is what a page shows of one remote participant's video.
type remoteVideo struct {
	ID     string `json:"id"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Frames int    `json:"frames"`
	Ready  int    `json:"ready"`
	Paused bool   `json:"paused"`
}

// playing reports whether the video has decoded frames and keeps presenting
// new ones.
func (v remoteVideo) playing() bool { return v.Width > 0 && v.Frames >= minFrames }

// callPage is what one call page shows.
type callPage struct {
	Self   string        `json:"self"`
	Text   string        `json:"text"`
	Videos []remoteVideo `json:"videos"`
	Err    string        `json:"-"`
}

// seesOthers reports whether the page plays the video of every participant
// in room but itself, and no other video.
func (p callPage) seesOthers(room []string) bool {
	want := map[string]bool{}
	for _, id := range room {
		if id != p.Self {
			want[id] = true
		}
	}
	if p.Self == "" || len(p.Videos) != len(want) {
		return false
	}
	for _, v := range p.Videos {
		if !want[v.ID] || !v.playing() {
			return false
		}
	}
	return true
}

// String describes what the page shows, for failure messages.
func (p callPage) String() string {
	if p.Err != "" {
		return "probe failed: " + p.Err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "participant %q, %d remote video(s)", p.Self, len(p.Videos))
	for _, v := range p.Videos {
		fmt.Fprintf(&b, "; %s: %dx%d, %d new frames, readyState %d, paused %t", v.ID, v.Width, v.Height, v.Frames, v.Ready, v.Paused)
	}
	fmt.Fprintf(&b, "; page text: %q", p.Text)
	return b.String()
}

// probe reads what a call page shows.
func probe(p *page) callPage {
	c, err := evaluate[callPage](p, probeScript)
	if err != nil {
		return callPage{Err: err.Error()}
	}
	return c
}

// waitForEachOther polls the pages until each plays every other participant's
// video, and fails with what each page shows if that takes over mediaTimeout.
func waitForEachOther(t *testing.T, pages []*page) {
	t.Helper()
	deadline := time.Now().Add(mediaTimeout)
	for {
		seen := make([]callPage, len(pages))
		ids := make([]string, len(pages))
		for i, p := range pages {
			seen[i] = probe(p)
			ids[i] = seen[i].Self
		}
		done := true
		for _, c := range seen {
			done = done && c.seesOthers(ids)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for i, c := range seen {
				fmt.Fprintf(&b, "\n  page %d: %s", i+1, c)
			}
			t.Fatalf("after %v, not every page plays the video of the %d others:%s", mediaTimeout, len(pages)-1, b.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestBrowserCall joins a therapist and three clients to one room through the
// join page: the clients wait until the therapist admits them from the
// console, then each page plays the other three's video and receives their
// audio. One client leaves and comes back; the therapist mutes one client (no
// more of their audio arrives); another client's connection drops and the page
// rejoins by itself with one attendance segment; the therapist removes a
// client with a reason, a family member finds the group full, the room is
// locked, and the therapist ends the session.
func TestBrowserCall(t *testing.T) {
	browser := startBrowser(t)
	n := testNode(t)
	start := time.Now()
	people := []struct {
		sub, name string
		role      rooms.Role
	}{
		{"therapist-1", "Dana", rooms.RoleTherapist},
		{"client-1", "Alex", rooms.RoleClient},
		{"client-2", "Sam", rooms.RoleClient},
		{"client-3", "Kim", rooms.RoleClient},
	}
	tabs := make([]*page, len(people))
	for i, p := range people {
		tabs[i] = newTab(t, browser)
		link := n.url + "/join#token=" + n.joinToken(t, p.sub, p.name, p.role, browserCallRoom)
		if err := step(tabs[i], chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`video[data-local]`))); err != nil {
			t.Fatalf("page %d: open the join link: %v", i+1, err)
		}
	}
	saveScreenshot(t, tabs[0], "iop-prejoin.png")
	therapist, alex, sam, kim := tabs[0], tabs[1], tabs[2], tabs[3]

	// The therapist goes straight in and has the console; the clients wait.
	click(t, therapist, `[data-action="join"]`)
	if err := step(therapist, chromedp.WaitVisible(chromedp.CSS(`[data-console]`))); err != nil {
		t.Fatalf("the therapist's page shows no console: %v", err)
	}
	for _, tab := range tabs[1:] {
		click(t, tab, `[data-action="join"]`)
		waitForText(t, tab, "You are in the waiting room")
		waitFor(t, tab, "the waiting room's words", `document.querySelector('[data-view="waiting"]').innerText.includes('Your therapist will let you in shortly')`)
	}
	saveScreenshot(t, sam, "iop-waiting.png")
	for _, p := range people[1:] {
		admit(t, therapist, p.name)
	}
	waitForEachOther(t, tabs)
	t.Logf("four pages play each other's video %v after opening the links", time.Since(start).Round(100*time.Millisecond))
	waitForAudio(t, tabs)
	saveScreenshot(t, alex, "iop-call.png")

	// One leaves: the others drop that tile, and the one who left can come
	// back through the waiting room.
	click(t, sam, `[data-view="call"] [data-action="leave"]`)
	waitForText(t, sam, "You left the session")
	waitForEachOther(t, []*page{therapist, alex, kim})
	click(t, sam, `[data-action="rejoin"]`)
	click(t, sam, `[data-action="join"]`)
	waitForText(t, sam, "You are in the waiting room")
	admit(t, therapist, "Sam")
	waitForEachOther(t, tabs)
	alexID, samID := probe(alex).Self, probe(sam).Self

	// The therapist mutes Alex: Alex is told and may unmute; everyone sees it.
	click(t, therapist, fmt.Sprintf(`[data-action="mute-audio"][data-participant=%q]`, alexID))
	waitFor(t, alex, "the muted notice", `document.querySelector('[data-notice]:not([hidden])')?.innerText.includes('Dana muted your microphone')`)
	waitFor(t, alex, "the unmute button", `document.querySelector('[data-view="call"] [data-action="toggle-audio"]').textContent === 'Unmute microphone'`)
	mutedBadge := fmt.Sprintf(`!document.querySelector('[data-tile=%q] [data-muted]').hidden`, alexID)
	waitFor(t, therapist, "Alex muted", mutedBadge)
	waitFor(t, sam, "Alex muted", mutedBadge)
	waitFor(t, kim, "Alex muted", mutedBadge)
	checkSilent(t, alexID, []*page{therapist, sam, kim})

	// Kim's connection drops (socket and PeerConnections closed, no leave):
	// the page says it is reconnecting, rejoins by itself, and the others
	// see Kim again; the attendance keeps one segment.
	dropped := time.Now()
	shown, err := evaluate[bool](kim, `(() => {
  window.__iop.dropConnection();
  const b = document.querySelector('[data-reconnecting]');
  return !b.hidden && b.innerText.includes('Reconnecting') && !document.querySelector('[data-view="call"]').hidden;
})()`)
	if err != nil || !shown {
		text, _ := evaluate[string](kim, visibleText)
		t.Fatalf("after the drop, Kim's page shows no Reconnecting banner in the call (%v); it shows: %q", err, text)
	}
	// Within mediaTimeout; how fast is measured, not asserted: four pages
	// encoding three simulcast layers each share two noisy cores here, and
	// the time swings between 6 and 12 s with the machine's load.
	waitForEachOther(t, tabs)
	t.Logf("the others see Kim again %v after the drop", time.Since(dropped).Round(100*time.Millisecond))
	waitFor(t, kim, "the banner gone", `document.querySelector('[data-reconnecting]').hidden`)
	staff := n.joinToken(t, "staff-1", "Billing", rooms.RoleStaff, token.AnyRoom)
	eventually(t, 5*time.Second, "Kim with one open segment", func() (bool, string) {
		status, body := api(t, n, "GET", "/v1/attendance/rooms/"+browserCallRoom, staff, nil)
		people, _ := body["people"].([]any)
		for _, p := range people {
			p := p.(map[string]any)
			if p["sub"] != "client-3" {
				continue
			}
			segs, _ := p["segments"].([]any)
			return len(segs) == 1 && segs[0].(map[string]any)["end"] == nil, fmt.Sprintf("%d segments: %v", len(segs), segs)
		}
		return false, fmt.Sprintf("%d %v", status, body)
	})

	// Alex raises a hand: the therapist sees it in the console and on the tile.
	click(t, alex, `[data-action="hand"]`)
	waitFor(t, therapist, "Alex's raised hand", fmt.Sprintf(
		`document.querySelector('[data-hands]').innerText.includes('Alex') && document.querySelector('[data-tile=%q]').classList.contains('tile-hand')`, alexID))
	saveArtifact(t, therapist, "iop-console.png")
	zoomScreenshot(t, therapist, "iop-console-zoom.png")

	// Alex unmutes, which is Alex's choice.
	click(t, alex, `[data-view="call"] [data-action="toggle-audio"]`)
	waitFor(t, therapist, "Alex unmuted", "!("+mutedBadge+")")

	// The therapist removes Sam with a reason: Sam's page shows it.
	const reason = "Let us talk one to one tomorrow."
	click(t, therapist, fmt.Sprintf(`[data-action="remove"][data-participant=%q]`, samID))
	if err := step(therapist,
		chromedp.WaitVisible(chromedp.CSS(`dialog[data-dialog="remove"] [data-remove-reason]`)),
		chromedp.SendKeys(chromedp.CSS(`dialog[data-dialog="remove"] [data-remove-reason]`), reason),
		chromedp.Click(chromedp.CSS(`dialog[data-dialog="remove"] [data-dialog-confirm]`)),
	); err != nil {
		t.Fatalf("the therapist's page: remove Sam: %v", err)
	}
	waitForText(t, sam, "You are no longer in this session")
	waitFor(t, sam, "the therapist's reason", fmt.Sprintf(`document.querySelector('[data-message-quote]').innerText.includes(%q)`, reason))
	saveScreenshot(t, sam, "iop-removed.png")
	waitForEachOther(t, []*page{therapist, alex, kim})

	// Sam may not come back; a family member has no place in a group; and
	// once the therapist locks the room, nobody new gets in.
	rejoinAs(t, n, sam, "client-2", "Sam", rooms.RoleClient)
	waitForText(t, sam, "You cannot rejoin this session")
	rejoinAs(t, n, sam, "family-1", "Jo", rooms.RoleFamily)
	waitForText(t, sam, "This session is full")
	click(t, therapist, `[data-action="lock"]`)
	waitFor(t, therapist, "the locked room", `document.querySelector('[data-action="lock"]').textContent === 'Unlock room'`)
	rejoinAs(t, n, sam, "client-4", "Lee", rooms.RoleClient)
	waitForText(t, sam, "This session is closed to new arrivals")

	// Four pages encoding and decoding on one machine keep it busy, but the
	// network (loopback) is sound: nobody is told their link is weak.
	for i, tab := range []*page{therapist, alex} {
		link, err := evaluate[map[string]any](tab, `({ ...window.__iop.link(), banner: !document.querySelector('[data-weak]').hidden })`)
		// "seen" is there once a whole window has been judged.
		if err != nil || link["banner"] != false || link["weak"] != false || link["seen"] == nil {
			t.Errorf("page %d: the weak-connection banner on a sound link, or no window judged yet: %v %v", i+1, link, err)
		}
	}

	// The therapist ends the session: everyone gets the closing message.
	click(t, therapist, `[data-action="end"]`)
	if err := step(therapist, chromedp.Click(chromedp.CSS(`dialog[data-dialog="end"] [data-dialog-confirm]`))); err != nil {
		t.Fatalf("the therapist's page: confirm the end: %v", err)
	}
	waitForText(t, alex, "The session has ended")
	waitForText(t, therapist, "The session has ended")
	checkConsole(t, tabs...)
}

// rejoinAs opens the call's join link of another person (or the same again)
// in tab and clicks join.
func rejoinAs(t *testing.T, n *node, tab *page, sub, name string, role rooms.Role) {
	t.Helper()
	link := n.url + "/join#token=" + n.joinToken(t, sub, name, role, browserCallRoom)
	// From the join page, a link to it changes only the fragment: leave first.
	if err := step(tab, chromedp.Navigate("about:blank"), chromedp.Navigate(link)); err != nil {
		t.Fatalf("join again as %s: %v", name, err)
	}
	// A link the link check refuses (removed) shows its message instead of
	// the device check: there is no Join to click.
	waitFor(t, tab, "the device check or a message", `['prejoin', 'message'].includes(document.body.dataset.state)`)
	if state, _ := evaluate[string](tab, `document.body.dataset.state`); state == "prejoin" {
		click(t, tab, `[data-action="join"]`)
	}
}

// click clicks the element sel of a page.
func click(t testing.TB, tab *page, sel string) {
	t.Helper()
	if err := step(tab, chromedp.Click(chromedp.CSS(sel))); err != nil {
		text, _ := evaluate[string](tab, visibleText)
		t.Fatalf("click %s: %v; the page shows: %q", sel, err, text)
	}
}

// admit waits until name is on the therapist's waiting list and clicks
// its Admit button.
func admit(t *testing.T, therapist *page, name string) {
	t.Helper()
	script := fmt.Sprintf(`(() => {
  const li = [...document.querySelectorAll('[data-waiting-people] li')].find((li) => li.querySelector('[data-name]').textContent === %q);
  return li ? li.querySelector('[data-action="admit"]').dataset.participant : '';
})()`, name)
	ctx, cancel := context.WithTimeout(therapist.ctx, stepTimeout)
	defer cancel()
	id, err := chromedp.Run(ctx, chromedp.Poll[string](script, chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		text, _ := evaluate[string](therapist, visibleText)
		t.Fatalf("%s never appeared on the therapist's waiting list (%v); the page shows: %q", name, err, text)
	}
	click(t, therapist, fmt.Sprintf(`[data-action="admit"][data-participant=%q]`, id))
}

// zoomScreenshot saves a screenshot of the page as at 200% zoom in a
// 1280x800 window (640x400 CSS pixels at twice the density), when
// IOP_SCREENSHOT_DIR is set.
func zoomScreenshot(t *testing.T, tab *page, name string) {
	t.Helper()
	if os.Getenv("IOP_SCREENSHOT_DIR") == "" {
		return
	}
	if err := step(tab, chromedp.EmulateViewport(640, 400, chromedp.EmulateScale(2))); err != nil {
		t.Errorf("zoom: %v", err)
		return
	}
	saveScreenshot(t, tab, name)
	if err := step(tab, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Errorf("unzoom: %v", err)
	}
}

// TestBrowserRedirect opens a join link on a node that does not hold the
// room: the page follows the redirect to the node that does (another
// origin), joins there without another click, and waits to be admitted.
func TestBrowserRedirect(t *testing.T) {
	browser := startBrowser(t)
	redis := os.Getenv("IOP_TEST_REDIS_URL")
	if redis == "" {
		m := miniredis.NewMiniRedis()
		if err := m.Start(); err != nil {
			t.Fatalf("start miniredis: %v", err)
		}
		t.Cleanup(m.Close)
		redis = "redis://" + m.Addr()
	}
	shared := func(c *config) { c.RedisURL = redis }
	home, other := testNode(t, shared), testNode(t, shared)
	room := "browser-redirect-" + token.RandomID(3)

	therapist := newTab(t, browser)
	if err := step(therapist, chromedp.Navigate(home.url+"/join#token="+home.joinToken(t, "therapist-1", "Dana", rooms.RoleTherapist, room))); err != nil {
		t.Fatalf("therapist: open the join link: %v", err)
	}
	click(t, therapist, `[data-action="join"]`)
	if err := step(therapist, chromedp.WaitVisible(chromedp.CSS(`[data-console]`))); err != nil {
		t.Fatalf("the therapist's page shows no console: %v", err)
	}

	client := newTab(t, browser)
	if err := step(client, chromedp.Navigate(other.url+"/join#token="+other.joinToken(t, "client-1", "Alex", rooms.RoleClient, room))); err != nil {
		t.Fatalf("client: open the join link: %v", err)
	}
	click(t, client, `[data-action="join"]`)
	// The page navigates away: probe until the new one answers.
	deadline := time.Now().Add(stepTimeout)
	for {
		origin, err := evaluate[string](client, `location.origin`)
		if err == nil && origin == home.url {
			break
		}
		if time.Now().After(deadline) {
			text, _ := evaluate[string](client, visibleText)
			t.Fatalf("the client's page is on %q (%v), not on the room's node %q; it shows: %q", origin, err, home.url, text)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitForText(t, client, "You are in the waiting room")
	if loc, err := evaluate[string](client, `location.href`); err != nil || strings.Contains(loc, "token=") {
		t.Errorf("the token stays in the address bar after the redirect: %q (%v)", loc, err)
	}
	admit(t, therapist, "Alex")
	waitForEachOther(t, []*page{therapist, client})
	checkConsole(t, therapist, client)
}

// TestBrowserJoinErrors checks that the join page explains a missing, expired
// or garbled token, or one for another room, in plain words.
func TestBrowserJoinErrors(t *testing.T) {
	browser := startBrowser(t)
	n := testNode(t)
	expired, err := n.minter.Mint(tokenClaims("client-1", "Alex", rooms.RoleClient, "browser-errors"), -time.Hour)
	if err != nil {
		t.Fatalf("mint an expired token: %v", err)
	}
	cases := []struct {
		name     string
		fragment string
		join     bool
		want     string
	}{
		{"no token", "", false, "This link is missing its access code"},
		// Refused by the link check, before the device check (ux_browser_test.go).
		{"expired token", "#token=" + expired, false, "This join link has expired"},
		{"garbage token", "#token=not.a-valid.jwt", false, "This join link does not work"},
		{"another room", "#token=" + n.joinToken(t, "client-1", "Alex", rooms.RoleClient, "browser-errors") + "&room=elsewhere", true, "This link cannot be used for this session"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab := newTab(t, browser)
			steps := []chromedp.Action[chromedp.Void]{chromedp.Navigate(n.url + "/join" + c.fragment)}
			if c.join {
				steps = append(steps, chromedp.Click(chromedp.CSS(`[data-action="join"]`)))
			}
			if err := step(tab, steps...); err != nil {
				t.Fatalf("open the join page: %v", err)
			}
			waitForText(t, tab, c.want)
			if loc, err := evaluate[string](tab, `location.href`); err != nil || strings.Contains(loc, "token=") {
				t.Errorf("the token stays in the address bar: %q (%v)", loc, err)
			}
			checkConsole(t, tab)
		})
	}
}

// waitForText waits until the visible heading of the page says want.
func waitForText(t *testing.T, tab *page, want string) {
	t.Helper()
	waitFor(t, tab, fmt.Sprintf("the heading %q", want),
		fmt.Sprintf(`[...document.querySelectorAll('[data-view]:not([hidden]) h1')].some((h) => h.textContent.includes(%q))`, want))
}

// waitFor waits until script is true on the page, and fails saying what
// never appeared and what the page shows instead.
func waitFor(t *testing.T, tab *page, what, script string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](script, chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		text, _ := evaluate[string](tab, visibleText)
		t.Fatalf("the page never showed %s (%v); it shows: %q", what, err, text)
	}
}

// browserScheduleYAML is a program whose day track meets every day 30
// minutes from now and whose evening track an hour from now, in a zone
// where it is about noon (so that nothing crosses local midnight).
const browserScheduleYAML = `program:
  id: {{.ID}}
  name: Browser IOP
  time_zone: {{.Zone}}
  tracks:
    - id: day
      name: Day
      sessions:
        - {id: relapse, title: Relapse prevention, kind: group, weekdays: [mon, tue, wed, thu, fri, sat, sun], start: "{{.Day}}", length: 30m, therapists: [t1]}
        - {id: morning, title: Morning check-in, kind: group, weekdays: [mon, tue, wed, thu, fri, sat, sun], start: "{{.Over}}", length: 30m, therapists: [t1]}
    - id: evening
      name: Evening
      sessions:
        - {id: coping, title: Coping skills, kind: group, weekdays: [mon, tue, wed, thu, fri, sat, sun], start: "{{.Evening}}", length: 30m, therapists: [t2]}
enrollments:
  - {sub: c1, track: day, start: {{.Enrolled}}}
`

// browserZone is the time zone the schedule test's browser lives in: not the
// program's, so that the page must show times in the person's own zone.
const browserZone = "America/Chicago"

// seededSchedule is a program seeded for a browser test.
type seededSchedule struct {
	program  string
	day, eve string    // today's room ids of the day and evening sessions
	over     string    // today's room id of a day session that ended over an hour ago
	dayStart time.Time // when today's day session starts
}

// seedBrowserSchedule seeds browserScheduleYAML into the test node.
func seedBrowserSchedule(t *testing.T, n *node) seededSchedule {
	t.Helper()
	now := time.Now().UTC()
	offset := 12 - now.Hour() // local hour about noon
	zone := fmt.Sprintf("Etc/GMT%+d", -offset)
	if offset == 0 {
		zone = "Etc/GMT"
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	local := now.In(loc).Truncate(time.Minute).Add(time.Minute)
	s := seededSchedule{program: "browser-" + token.RandomID(3), dayStart: local.Add(30 * time.Minute)}
	var yaml strings.Builder
	err = template.Must(template.New("y").Parse(browserScheduleYAML)).Execute(&yaml, map[string]string{
		"ID": s.program, "Zone": zone,
		"Day":      s.dayStart.Format("15:04"),
		"Evening":  local.Add(60 * time.Minute).Format("15:04"),
		"Over":     local.Add(-2 * time.Hour).Format("15:04"),
		"Enrolled": local.AddDate(0, 0, -7).Format("2006-01-02"),
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := schedule.LoadYAML(strings.NewReader(yaml.String()))
	if err != nil {
		t.Fatalf("the test schedule: %v", err)
	}
	if err := n.schedule.Seed(context.Background(), f); err != nil {
		t.Fatalf("seed the test schedule: %v", err)
	}
	date := local.Format("20060102")
	s.day, s.eve, s.over = s.program+"-relapse-"+date, s.program+"-coping-"+date, s.program+"-morning-"+date
	return s
}

// programToken mints a token of program for a person in room.
func programToken(t *testing.T, n *node, program, sub, name string, role rooms.Role, room string) string {
	t.Helper()
	c := tokenClaims(sub, name, role, room)
	c.Program = program
	tok, err := n.minter.Mint(c, time.Hour)
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	return tok
}

// inZone makes a tab live in a time zone.
func inZone(t *testing.T, tab *page, zone string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: zone}); err != nil {
		t.Fatalf("time zone %s: %v", zone, err)
	}
}

// clock is a time of day as the page writes it in en-US: "3:04 PM".
func clock(t time.Time) string { return t.Format("3:04 PM") }

// normalized is a script's text with the narrow and no-break spaces that
// Intl puts before AM and PM made plain.
func normalized(script string) string {
	return `(` + script + `).replace(/[\u202f\u00a0]/g, ' ')`
}

// TestBrowserSchedule opens an enrolled client's join link in a browser
// living in another time zone than the program: the device check lists
// "Your next sessions" with the opening time in the browser's zone, the
// calendar address and "My week"; joining 40 minutes early is refused with
// the time the session opens; joining the other track's session is refused
// with their next session.
func TestBrowserSchedule(t *testing.T) {
	browser := startBrowser(t)
	n := testNode(t)
	s := seedBrowserSchedule(t, n)
	chicago, err := time.LoadLocation(browserZone)
	if err != nil {
		t.Fatal(err)
	}
	start := s.dayStart.In(chicago)
	opens := start.Add(-10 * time.Minute)

	tab := newTab(t, browser)
	inZone(t, tab, browserZone)
	link := n.url + "/join#token=" + programToken(t, n, s.program, "c1", "Alex", rooms.RoleClient, s.day)
	if err := step(tab, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`video[data-local]`))); err != nil {
		t.Fatalf("open the join link: %v", err)
	}
	next := `document.querySelector('[data-next-sessions]:not([hidden]) [data-sessions-list]')?.innerText || ''`
	waitFor(t, tab, "Your next sessions", fmt.Sprintf(`%s.includes('Relapse prevention') && %s.includes(%q) && %s.includes(%q)`,
		normalized(next), normalized(next), "Opens at "+clock(opens), normalized(next), clock(start)))
	waitFor(t, tab, "the session of this link marked", fmt.Sprintf(`document.querySelector('[data-session=%q] .tag')?.textContent === 'This link'`, s.day))
	waitFor(t, tab, "the calendar address", fmt.Sprintf(`!document.querySelector('[data-calendar]').hidden && document.querySelector('[data-calendar-url]').value.startsWith(%q)`, n.url+"/v1/calendar/"))
	waitFor(t, tab, "the calendar's privacy note", `document.querySelector('[data-calendar]').innerText.includes('the calendar shows “Group session”, not what it is about')`)
	waitFor(t, tab, "My week", `!document.querySelector('[data-my-week]').hidden && document.querySelector('[data-my-week]').innerText.includes('0 min of 9 h')`)
	click(t, tab, `[data-action="copy-calendar"]`)
	waitFor(t, tab, "a word about copying", `document.querySelector('[data-copy-status]').textContent !== ''`)
	saveScreenshot(t, tab, "iop-join-sessions.png")
	zoomScreenshot(t, tab, "iop-join-sessions-zoom.png")

	// 40 minutes early: the page says when the room opens, in Chicago time.
	click(t, tab, `[data-action="join"]`)
	waitForText(t, tab, "It is a little early to join")
	want := fmt.Sprintf("at %s (10 minutes before it starts). Please come back then.", clock(opens))
	waitFor(t, tab, "the opening time", fmt.Sprintf(`%s.includes(%q)`, normalized(`document.querySelector('[data-message-text]').textContent`), want))
	waitFor(t, tab, "the try again button", `!document.querySelector('[data-action="rejoin"]').hidden`)
	saveScreenshot(t, tab, "iop-too-early.png")

	// The evening track's session: refused, with their own next session.
	link = n.url + "/join#token=" + programToken(t, n, s.program, "c1", "Alex", rooms.RoleClient, s.eve)
	if err := step(tab, chromedp.Navigate("about:blank"), chromedp.Navigate(link), chromedp.Click(chromedp.CSS(`[data-action="join"]`))); err != nil {
		t.Fatalf("join the evening session: %v", err)
	}
	waitForText(t, tab, "This session is for another group")
	want = fmt.Sprintf("Your next session: Relapse prevention, today at %s.", clock(start))
	if start.Day() != time.Now().In(chicago).Day() {
		want = "Your next session: Relapse prevention, tomorrow at " + clock(start)
	}
	waitFor(t, tab, "their next session", fmt.Sprintf(`%s.includes(%q)`, normalized(`document.querySelector('[data-message-next]:not([hidden])')?.textContent || ''`), want))
	saveScreenshot(t, tab, "iop-wrong-track.png")

	// A session that ended, and one for someone not enrolled in the program.
	for _, c := range []struct{ sub, room, want string }{
		{"c1", s.over, "This session is no longer open"},
		{"c9", s.day, "This session is not on your schedule"},
	} {
		link = n.url + "/join#token=" + programToken(t, n, s.program, c.sub, "Alex", rooms.RoleClient, c.room)
		if err := step(tab, chromedp.Navigate("about:blank"), chromedp.Navigate(link), chromedp.Click(chromedp.CSS(`[data-action="join"]`))); err != nil {
			t.Fatalf("join %s as %s: %v", c.room, c.sub, err)
		}
		waitForText(t, tab, c.want)
	}
	checkConsole(t, tab)
}

// durationText is how the pages write a number of seconds.
func durationText(s int64) string {
	switch {
	case s <= 0:
		return "0 min"
	case s < 60:
		return "under 1 min"
	}
	h, m := s/3600, s%3600/60
	switch {
	case h == 0:
		return fmt.Sprintf("%d min", m)
	case m == 0:
		return fmt.Sprintf("%d h", h)
	}
	return fmt.Sprintf("%d h %d min", h, m)
}

// TestBrowserDashboard: after a short real call of a therapist and a client
// (headless pion peers), the staff dashboard lists the client with bars and
// the API's numbers, shows their week in detail, and downloads the week's
// CSV from a Blob without the token in any URL. The client's own join link
// then shows "My week".
func TestBrowserDashboard(t *testing.T) {
	browser := startBrowser(t)
	n := testNode(t)
	room := "browser-att-" + token.RandomID(3)
	ther := joinPeer(t, n, "dana", rooms.RoleTherapist, room)
	alex := joinPeer(t, n, "alex", rooms.RoleClient, room)
	eventually(t, 20*time.Second, "call up", func() (bool, string) { return receivesFrom(ther, 10, alex) })
	time.Sleep(1500 * time.Millisecond)
	alex.Leave()
	ther.Leave()

	staff := n.joinToken(t, "staff-1", "Billing", rooms.RoleStaff, token.AnyRoom)
	y, w := time.Now().UTC().ISOWeek()
	week := isoWeek(y, w)
	var client map[string]any
	eventually(t, 10*time.Second, "the client's closed segment in the week", func() (bool, string) {
		status, body := api(t, n, "GET", "/v1/attendance/programs/demo/weeks/"+week, staff, nil)
		people, _ := body["people"].([]any)
		for _, p := range people {
			p := p.(map[string]any)
			if p["sub"] == "sub-alex" && p["seconds"].(float64) >= 1 && !p["live"].(bool) {
				client = p
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d %v", status, body)
	})

	tab := newTab(t, browser)
	if err := step(tab, chromedp.Navigate(n.url+"/staff#token="+staff)); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	row := `tr[data-person="sub-alex"]`
	waitFor(t, tab, "the client's row with two bars", fmt.Sprintf(`document.querySelectorAll('%s .goal-track .goal-fill').length === 2`, row))
	rowText, err := evaluate[string](tab, fmt.Sprintf(`document.querySelector('%s').innerText.replace(/\s+/g, ' ')`, row))
	if err != nil {
		t.Fatal(err)
	}
	hours := fmt.Sprintf("%s of %s h", durationText(int64(client["seconds"].(float64))), strconv.FormatFloat(client["target_hours"].(float64), 'f', -1, 64))
	days := fmt.Sprintf("%d of %d days", int(client["days"].(float64)), int(client["target_days"].(float64)))
	status := map[string]string{"on_track": "Can still meet target", "at_risk": "At risk", "below": "Below target"}[client["status"].(string)] // a few seconds never meet 9 h
	for _, want := range []string{"alex", hours, days, status} {
		if !strings.Contains(rowText, want) {
			t.Errorf("the client's row says %q, not %q (API: %v)", rowText, want, client)
		}
	}
	if loc, err := evaluate[string](tab, `location.href`); err != nil || strings.Contains(loc, "token=") {
		t.Errorf("the token stays in the address bar: %q (%v)", loc, err)
	}
	saveArtifact(t, tab, "iop-dashboard.png")
	zoomScreenshot(t, tab, "iop-dashboard-zoom.png")

	// The client's week in detail: the session with its time.
	click(t, tab, row+` [data-action="detail"]`)
	waitFor(t, tab, "the client's session in detail", fmt.Sprintf(
		`document.querySelector('dialog[data-dialog="detail"][open] [data-detail-sessions] tr[data-room=%q]')?.innerText.includes(%q)`,
		room, durationText(int64(client["seconds"].(float64)))))
	saveScreenshot(t, tab, "iop-dashboard-detail.png")
	click(t, tab, `[data-action="close-detail"]`)
	waitFor(t, tab, "the detail closed and focus back on the name", `!document.querySelector('dialog[open]') && document.activeElement.dataset.person === 'sub-alex'`)

	// Download CSV: fetched with the bearer header, saved from a Blob URL.
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(tab.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir,
	}); err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
	if _, err := evaluate[bool](tab, `(() => {
  window.__iopBlobs = [];
  const create = URL.createObjectURL;
  URL.createObjectURL = (b) => { const u = create.call(URL, b); window.__iopBlobs.push({ blob: b, url: u }); return u; };
  return true;
})()`); err != nil {
		t.Fatal(err)
	}
	click(t, tab, `[data-action="download-csv"]`)
	waitFor(t, tab, "a Blob of the CSV", `window.__iopBlobs.length === 1 && window.__iopBlobs[0].url.startsWith('blob:')`)
	csv, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.__iopBlobs[0].blob.text()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(csv, "sub,name,role,room,kind,date_local,") || !strings.Contains(csv, "sub-alex,") || !strings.Contains(csv, room) {
		t.Errorf("the CSV Blob:\n%s", csv)
	}
	file := filepath.Join(dir, "attendance-demo-"+week+".csv")
	eventually(t, 10*time.Second, "the downloaded CSV", func() (bool, string) {
		b, err := os.ReadFile(file)
		return err == nil && string(b) == csv, fmt.Sprintf("%s: %v", file, err)
	})

	// The client's own join link shows "My week".
	link := n.url + "/join#token=" + n.joinToken(t, "sub-alex", "alex", rooms.RoleClient, room)
	if err := step(tab, chromedp.Navigate("about:blank"), chromedp.Navigate(link)); err != nil {
		t.Fatalf("open the client's join link: %v", err)
	}
	waitFor(t, tab, "My week", fmt.Sprintf(`!document.querySelector('[data-my-week]').hidden && document.querySelector('[data-my-week]').innerText.includes(%q)`, hours))
	waitFor(t, tab, "no next sessions for an ad-hoc room", `document.querySelector('[data-next-sessions]').hidden && document.querySelector('[data-calendar]').hidden`)
	checkConsole(t, tab)
}

// browserCallRoom is the call test's room, new in every run: removals are
// remembered in Redis for a day, and CI's Redis outlives a run.
var browserCallRoom = "browser-call-" + token.RandomID(3)

// videoStatsScript reports a call page's own video statistics: per rid of
// its outbound camera, the frames encoded, the frame width and what limits
// the quality; per remote participant, the frame width and frames decoded
// of their inbound video, and the width in device pixels of the tile that
// shows it.
const videoStatsScript = `(async () => {
  const out = { sent: {}, received: {} };
  const owner = new Map();
  for (const v of document.querySelectorAll('video[data-participant]')) {
    const t = v.srcObject && v.srcObject.getVideoTracks()[0];
    if (t) owner.set(t.id, v);
  }
  for (const pc of window.__iop.peerConnections()) {
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video') {
        out.sent[s.rid || ''] = { frames: s.framesEncoded || 0, width: s.frameWidth || 0, limit: s.qualityLimitationReason || '' };
      } else if (s.type === 'inbound-rtp' && s.kind === 'video' && owner.has(s.trackIdentifier)) {
        const v = owner.get(s.trackIdentifier);
        out.received[v.dataset.participant] = { frames: s.framesDecoded || 0, width: s.frameWidth || 0, tile: Math.round(v.clientWidth * devicePixelRatio) };
      }
    });
  }
  return out;
})()`

// videoStream is one video stream in videoStatsScript's report.
type videoStream struct {
	Frames int    `json:"frames"`
	Width  int    `json:"width"`
	Limit  string `json:"limit"`
	Tile   int    `json:"tile"`
}

// videoStats is videoStatsScript's report.
type videoStats struct {
	Sent     map[string]videoStream `json:"sent"`
	Received map[string]videoStream `json:"received"`
}

// readVideoStats reads videoStatsScript on a page.
func readVideoStats(p *page) (videoStats, error) {
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[videoStats](videoStatsScript, chromedp.EvalAwaitPromise))
}

// String describes the video streams, for failure messages.
func (v videoStats) String() string {
	var b strings.Builder
	for _, rid := range []string{"q", "h", "f", ""} {
		if s, ok := v.Sent[rid]; ok {
			fmt.Fprintf(&b, "sent %q: %d frames %d wide (limited by %s); ", rid, s.Frames, s.Width, s.Limit)
		}
	}
	for id, s := range v.Received {
		fmt.Fprintf(&b, "received from %s: %d frames %d wide, in a tile %d device pixels wide; ", id, s.Frames, s.Width, s.Tile)
	}
	return b.String()
}

// encodingsScript reports, per rid, whether a call page's camera encoding is
// active (the server's encodings messages set it).
const encodingsScript = `(() => {
  const out = {};
  for (const pc of window.__iop.peerConnections()) {
    for (const s of pc.getSenders()) {
      if (s.track && s.track.kind === 'video') {
        for (const e of s.getParameters().encodings || []) out[e.rid || ''] = e.active;
      }
    }
  }
  return out;
})()`

// paused waits until the page's camera sends only the layer with rid
// sending and has stopped encoding the layers of the rids off: their
// active flags are false and they encode no frame for a second.
func paused(t *testing.T, p *page, sending string, off ...string) {
	t.Helper()
	eventually(t, simulcastTimeout, fmt.Sprintf("the page's camera sends only %q, %q paused", sending, off), func() (bool, string) {
		active, err := evaluate[map[string]bool](p, encodingsScript)
		if err != nil {
			return false, err.Error()
		}
		if !active[sending] {
			return false, fmt.Sprintf("encodings active: %v", active)
		}
		for _, rid := range off {
			if active[rid] {
				return false, fmt.Sprintf("encodings active: %v", active)
			}
		}
		before, err := readVideoStats(p)
		if err != nil {
			return false, err.Error()
		}
		time.Sleep(time.Second)
		after, err := readVideoStats(p)
		if err != nil {
			return false, err.Error()
		}
		for _, rid := range off {
			if after.Sent[rid].Frames != before.Sent[rid].Frames {
				return false, fmt.Sprintf("%q paused but still encoding: %s", rid, after)
			}
		}
		return after.Sent[sending].Frames > before.Sent[sending].Frames, after.String()
	})
}

// layerRecorder keeps the layer messages a page sends, as "<participant>
// <quality>" in window.__iopLayers; it sees no other message.
const layerRecorder = `(() => {
  const send = WebSocket.prototype.send;
  window.__iopLayers = [];
  WebSocket.prototype.send = function (data) {
    try {
      const m = JSON.parse(data);
      if (m.type === 'layer') window.__iopLayers.push(m.participant + ' ' + m.quality);
    } catch {}
    return send.call(this, data);
  };
})()`

// simulcastTimeout bounds how long the publisher's browser may take to send
// all three layers, and a subscriber to get the one it asked for: Chrome
// sends the full layer only once its bandwidth estimate has grown (about 20 s
// here on loopback) and a layer switch waits for a keyframe.
const simulcastTimeout = 90 * time.Second

// TestBrowserSimulcast: a therapist and a client in a call. The therapist's
// page publishes the 1280x720 fake camera in three layers (rids q, h and f);
// the client's page
// asks for the layer that fits the therapist's tile, so the video it decodes
// is the full layer (wider than the half one) while the tile is large, and
// at most 320 pixels wide once the window is made small. Without the
// client's layer messages the server forwards the half layer and the first
// check fails. The layers nobody watches are paused at the therapist's
// browser: the half layer while the tile is large, the half and full layers
// once it is small. When the window grows back, the page
// asks for the full layer again and the picture follows.
func TestBrowserSimulcast(t *testing.T) {
	browser := startBrowser(t)
	n := testNode(t)
	room := "browser-simulcast-" + token.RandomID(3)
	dana, alex := newTab(t, browser), newTab(t, browser)
	ctx, cancel := context.WithTimeout(alex.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: layerRecorder}); err != nil {
		t.Fatalf("record Alex's layer messages: %v", err)
	}
	for i, p := range []struct {
		tab       *page
		sub, name string
		role      rooms.Role
	}{{dana, "therapist-1", "Dana", rooms.RoleTherapist}, {alex, "client-1", "Alex", rooms.RoleClient}} {
		link := n.url + "/join#token=" + n.joinToken(t, p.sub, p.name, p.role, room)
		if err := step(p.tab, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`video[data-local]`))); err != nil {
			t.Fatalf("page %d: open the join link: %v", i+1, err)
		}
		click(t, p.tab, `[data-action="join"]`)
	}
	admit(t, dana, "Alex")
	waitForEachOther(t, []*page{dana, alex})
	danaID := probe(dana).Self
	start := time.Now()

	// Both read at once: what Dana's browser sends and what Alex's decodes.
	read := func() (sent, got videoStats, why string) {
		var err error
		if sent, err = readVideoStats(dana); err != nil {
			return sent, got, "Dana's page: " + err.Error()
		}
		if got, err = readVideoStats(alex); err != nil {
			return sent, got, "Alex's page: " + err.Error()
		}
		return sent, got, fmt.Sprintf("Dana's page: %s\nAlex's page: %s", sent, got)
	}
	// Dana's camera is published in three layers; which of them her
	// browser encodes depends on who watches (checked below).
	eventually(t, stepTimeout, "Dana's camera in three encodings", func() (bool, string) {
		active, err := evaluate[map[string]bool](dana, encodingsScript)
		_, q := active["q"]
		_, h := active["h"]
		_, f := active["f"]
		return err == nil && len(active) == 3 && q && h && f, fmt.Sprintf("encodings %v (%v)", active, err)
	})

	// Alex's tile of Dana is 600-odd CSS pixels wide and draws the 16:9
	// picture wider still: more than the half layer's 640.
	full := func(what string) {
		t.Helper()
		eventually(t, simulcastTimeout, what, func() (bool, string) {
			sent, got, why := read()
			v := got.Received[danaID]
			return v.Tile > 320 && v.Width > sent.Sent["h"].Width && v.Width >= sent.Sent["f"].Width, why
		})
	}
	full("Alex's large tile of Dana plays the full layer")
	t.Logf("Alex's large tile plays the full layer %v after the call started", time.Since(start).Round(100*time.Millisecond))
	saveScreenshot(t, alex, "iop-simulcast.png")
	// Nobody watches Dana's half layer now: the server has her browser
	// stop encoding it. (The quarter layer stays while Alex's bandwidth
	// estimate aims his tile there: on a loaded machine it may.)
	paused(t, dana, "f", "h")

	// A small window: two tiles of under 320 device pixels, the quarter layer.
	if err := step(alex, chromedp.EmulateViewport(480, 500)); err != nil {
		t.Fatalf("make Alex's window small: %v", err)
	}
	switched := time.Now()
	eventually(t, simulcastTimeout, "Alex's small tile of Dana plays the quarter layer", func() (bool, string) {
		_, got, why := read()
		v := got.Received[danaID]
		return v.Tile > 0 && v.Tile <= 320 && v.Width > 0 && v.Width <= 320, why
	})
	t.Logf("Alex's small tile plays the quarter layer %v after the window shrank", time.Since(switched).Round(100*time.Millisecond))
	saveScreenshot(t, alex, "iop-simulcast-small.png")
	paused(t, dana, "q", "h", "f")

	// Large again: the page asks for the full layer again, having asked for
	// exactly high, then low, and the picture climbs back. A browser that
	// receives only the quarter layer estimates little more than it
	// receives, so the server probes its way up a layer at a time (sfu's
	// bwe.go): this takes tens of seconds, not one.
	if err := step(alex, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("make Alex's window large again: %v", err)
	}
	want := []string{danaID + " high", danaID + " low", danaID + " high"}
	eventually(t, stepTimeout, "Alex's page asks for high, low, then high again", func() (bool, string) {
		sent, err := evaluate[[]string](alex, `window.__iopLayers`)
		return err == nil && slices.Equal(sent, want), fmt.Sprintf("the layer messages: %q (%v)", sent, err)
	})
	grown := time.Now()
	full("Alex's large tile of Dana plays the full layer again")
	t.Logf("Alex's large tile plays the full layer again %v after the window grew", time.Since(grown).Round(100*time.Millisecond))
	checkConsole(t, dana, alex)
}
