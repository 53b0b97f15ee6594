package main

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"iop/rooms"
	"iop/signaling/client"
	"iop/signaling/token"
)

// joinRecorder runs in the page before its own scripts and notes, in
// window.__iopJoin (performance.now(), ms), the page's own timings of a
// join: the click on Join, the server's joined message, the subscribe
// PeerConnection's ICE connected and its DTLS connected (connectionState
// connected), and the first frame presented by any remote tile.
const joinRecorder = `(() => {
  const T = window.__iopJoin = { click: -1, joined: -1, ice: -1, dtls: -1, frame: -1 };
  const now = () => performance.now();
  document.addEventListener('click', (e) => {
    if (T.click < 0 && e.target.closest && e.target.closest('[data-action="join"]')) T.click = now();
  }, true);
  const WS = window.WebSocket;
  window.WebSocket = class extends WS {
    constructor(...a) {
      super(...a);
      this.addEventListener('message', (e) => {
        if (T.joined >= 0) return;
        try { if (JSON.parse(e.data).type === 'joined') T.joined = now(); } catch {}
      });
    }
  };
  const PC = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends PC {
    constructor(...a) {
      super(...a);
      let sub = false; // the subscribe PeerConnection is the one that gets tracks
      this.addEventListener('track', () => { sub = true; });
      this.addEventListener('iceconnectionstatechange', () => {
        if (sub && T.ice < 0 && (this.iceConnectionState === 'connected' || this.iceConnectionState === 'completed')) T.ice = now();
      });
      this.addEventListener('connectionstatechange', () => {
        if (sub && T.dtls < 0 && this.connectionState === 'connected') T.dtls = now();
      });
    }
  };
  const seen = new Set();
  setInterval(() => {
    for (const v of document.querySelectorAll('video[data-participant]')) {
      if (seen.has(v) || !v.srcObject || v.srcObject.getVideoTracks().length === 0) continue;
      seen.add(v);
      v.requestVideoFrameCallback(() => { if (T.frame < 0) T.frame = now(); });
    }
  }, 10);
})()`

// joinTimes is what joinRecorder noted.
type joinTimes struct {
	Click  float64 `json:"click"`
	Joined float64 `json:"joined"`
	ICE    float64 `json:"ice"`
	DTLS   float64 `json:"dtls"`
	Frame  float64 `json:"frame"`
}

// BenchmarkBrowserJoin measures what a person waits for in the browser:
// from clicking Join to the first remote frame playing, for the 2nd and
// the 15th person of a group, in headless Chromium with the fake camera
// and microphone, broken down by the page's own timings: signaling (the
// click to the joined message: the websocket, the join and the admission),
// ICE (joined to the subscribe PeerConnection's ICE connected: both
// negotiations and the checks), DTLS (to its connectionState connected)
// and the first keyframe (to the first frame presented). The therapist is
// another Chromium page with the fake camera, who lets people in
// automatically; for the 15th, 13 pion participants (signaling/client) that
// publish VP8 and Opus fill the room (15 pages are too many for two cores).
// Every iteration is a new client's page in the same room, which leaves
// before the next one joins; while nobody watches the therapist, her
// layers are paused, so a join includes resuming one. Run it with a few
// iterations:
//
//	go test ./cmd/iopd -run '^$' -bench BrowserJoin -benchtime 10x
//
// Each sub-benchmark reports the mean of each part (ms) and logs the p50
// and p95 of the whole.
func BenchmarkBrowserJoin(b *testing.B) {
	for _, others := range []int{1, 14} {
		b.Run(fmt.Sprintf("person=%d", others+1), func(b *testing.B) { benchJoin(b, others) })
	}
}

func benchJoin(b *testing.B, others int) {
	browser := startBrowser(b)
	n := testNode(b)
	room := "bench-join-" + token.RandomID(3)
	// Dana, the therapist, in Chromium with the fake camera: the video
	// the measured page shows first (pion's synthetic frames do not
	// decode). She lets people in automatically.
	dana := newTab(b, browser)
	link := n.url + "/join#token=" + n.joinToken(b, "therapist-1", "Dana", rooms.RoleTherapist, room)
	if err := step(dana, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`video[data-local]`))); err != nil {
		b.Fatalf("Dana opens the join link: %v", err)
	}
	click(b, dana, `[data-action="join"]`)
	click(b, dana, `[data-action="auto-admit"]`)
	if err := step(dana, chromedp.WaitVisible(chromedp.CSS(`[data-action="auto-admit"][aria-pressed="true"]`))); err != nil {
		b.Fatalf("Dana lets people in automatically: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range others - 1 {
		name := fmt.Sprintf("Pion %d", i)
		p, err := client.Join(ctx, n.url, n.joinToken(b, fmt.Sprintf("pion-%d", i), name, rooms.RoleClient, room), client.Options{})
		if err != nil {
			b.Fatalf("%s joins: %v", name, err)
		}
		b.Cleanup(p.Close)
		if err := p.WaitPublishing(ctx); err != nil {
			b.Fatalf("%s publishes: %v", name, err)
		}
	}
	tab := newTab(b, browser)
	rctx, rcancel := context.WithTimeout(tab.ctx, stepTimeout)
	_, err := chromedp.Call(rctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: joinRecorder})
	rcancel()
	if err != nil {
		b.Fatalf("record the join: %v", err)
	}

	var total, signaling, ice, dtls, keyframe []time.Duration
	ms := func(from, to float64) time.Duration { return time.Duration((to - from) * float64(time.Millisecond)) }
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		link := n.url + "/join#token=" + n.joinToken(b, fmt.Sprintf("bench-%d", i), fmt.Sprintf("Client %d", i), rooms.RoleClient, room)
		if err := step(tab, chromedp.Navigate("about:blank"), chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`video[data-local]`))); err != nil {
			b.Fatalf("open the join link: %v", err)
		}
		b.StartTimer()
		click(b, tab, `[data-action="join"]`)
		wctx, wcancel := context.WithTimeout(tab.ctx, mediaTimeout)
		t, err := chromedp.Run(wctx, chromedp.Poll[joinTimes](`window.__iopJoin.frame >= 0 ? window.__iopJoin : null`, chromedp.WithPollingInterval(20*time.Millisecond)))
		wcancel()
		b.StopTimer()
		if err != nil {
			got, _ := evaluate[joinTimes](tab, `window.__iopJoin`)
			text, _ := evaluate[string](tab, visibleText)
			b.Fatalf("no remote frame within %v (%+v); the page shows %q", mediaTimeout, got, text)
		}
		total = append(total, ms(t.Click, t.Frame))
		signaling = append(signaling, ms(t.Click, t.Joined))
		ice = append(ice, ms(t.Joined, t.ICE))
		dtls = append(dtls, ms(t.ICE, t.DTLS))
		keyframe = append(keyframe, ms(t.DTLS, t.Frame))
		click(b, tab, `[data-view="call"] [data-action="leave"]`)
		b.StartTimer()
	}
	b.StopTimer()
	mean := func(d []time.Duration) float64 {
		var s time.Duration
		for _, x := range d {
			s += x
		}
		return float64(s) / float64(len(d)) / float64(time.Millisecond)
	}
	b.ReportMetric(mean(total), "ms-to-frame")
	b.ReportMetric(mean(signaling), "ms-signaling")
	b.ReportMetric(mean(ice), "ms-ice")
	b.ReportMetric(mean(dtls), "ms-dtls")
	b.ReportMetric(mean(keyframe), "ms-keyframe")
	b.Logf("person %d, %d joins: click to first remote frame %s; parts (p50): signaling %v, ICE %v, DTLS %v, first keyframe %v",
		others+1, len(total), distribution(total), p50(signaling), p50(ice), p50(dtls), p50(keyframe))
}

// p50 is the median of d.
func p50(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2].Round(time.Millisecond)
}
