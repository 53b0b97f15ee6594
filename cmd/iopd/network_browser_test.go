package main

// Browser tests of real networks: ICE over TCP where UDP is blocked, TURN
// relays (a test-owned pion/turn server and iopd's embedded one), the join
// page's connection check, and the weak-connection judgement. Two run
// themselves again in a network namespace without UDP (they need root,
// unshare and ip, and skip otherwise). Artifacts: iop-console-tcp.png,
// iop-console-relay.png, iop-console-embedded-relay.png; with
// IOP_SCREENSHOT_DIR also iop-check-open.png, iop-check-relay.png and
// iop-check-blocked.png.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/logging"
	pturn "github.com/pion/turn/v5"

	"iop/rooms"
	"iop/signaling/token"
)

// proxiedUDPOnly returns a browser profile whose WebRTC sends no UDP except
// through TURN, and no TCP except to TURN (RFC 8828 mode 4, the
// disable_non_proxied_udp policy), as set by a locked-down workplace. The
// command-line switch --force-webrtc-ip-handling-policy no longer takes
// effect in this Chromium (156); the profile preference does.
func proxiedUDPOnly(t *testing.T) chromedp.ExecAllocatorOption {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "Default"), 0o700); err != nil {
		t.Fatal(err)
	}
	prefs := `{"webrtc": {"ip_handling_policy": "disable_non_proxied_udp"}}`
	if err := os.WriteFile(filepath.Join(dir, "Default", "Preferences"), []byte(prefs), 0o600); err != nil {
		t.Fatal(err)
	}
	return chromedp.UserDataDir(dir)
}

// noUDPEnv marks the run of a test inside its network namespace without UDP.
const noUDPEnv = "IOP_TEST_IN_NO_UDP_NETNS"

// inNetnsWithoutUDP runs the calling test again in a network namespace of
// its own in which nothing can send UDP (a policy-routing rule prohibits
// it, as a firewall that blocks outbound UDP would), and reports true in
// that inner run. In the outer run it returns false once the inner run has
// passed; the test must then return. It skips without root, unshare or ip.
func inNetnsWithoutUDP(t *testing.T) bool {
	t.Helper()
	if os.Getenv(noUDPEnv) == "1" {
		return true
	}
	chromiumPath(t)
	if os.Geteuid() != 0 {
		t.Skip("a network namespace without UDP needs root")
	}
	for _, tool := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("a network namespace without UDP needs %s", tool)
		}
	}
	// Loopback up; every UDP packet prohibited before the local table is
	// consulted; TCP untouched.
	const setup = `set -e
ip link set lo up
for v in -4 -6; do
  ip $v rule add pref 10 ipproto udp prohibit
  ip $v rule add pref 20 lookup local
  ip $v rule del pref 0
done
exec "$@"`
	cmd := exec.Command("unshare", "-n", "--", "sh", "-c", setup, "sh",
		os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.count=1", "-test.timeout=5m", "-test.v")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IOP_TEST_REDIS_URL=") { // the host's Redis is out of reach there
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, noUDPEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("in a network namespace without UDP (%v):\n%s", err, out)
	}
	if testing.Verbose() {
		t.Logf("in a network namespace without UDP:\n%s", out)
	}
	return false
}

// startTURN runs a TURN server for the test (pion/turn, in this process) on
// a loopback TCP port, checking TURN REST credentials made with secret, and
// relaying from loopback. It returns its turn: URL.
func startTURN(t *testing.T, secret string) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	quiet := logging.NewDefaultLoggerFactory()
	quiet.DefaultLogLevel = logging.LogLevelDisabled // a relay cut at the test's end is no error
	srv, err := pturn.NewServer(pturn.ServerConfig{
		Realm:         "iop-test",
		AuthHandler:   pturn.LongTermTURNRESTAuthHandler(secret, quiet.NewLogger("turn")),
		LoggerFactory: quiet,
		ListenerConfigs: []pturn.ListenerConfig{{
			Listener: ln,
			RelayAddressGenerator: &pturn.RelayAddressGeneratorStatic{
				RelayAddress: net.IPv4(127, 0, 0, 1),
				Address:      "127.0.0.1",
			},
		}},
	})
	if err != nil {
		_ = ln.Close()
		t.Fatalf("start TURN server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return "turn:" + ln.Addr().String() + "?transport=tcp"
}

// selectedPairScript reports the local candidate type and protocol of the
// candidate pair each of the page's PeerConnections uses, e.g. "relay/udp".
const selectedPairScript = `(async () => {
  const out = [];
  for (const pc of window.__iop.peerConnections()) {
    const st = await pc.getStats();
    let pair = null;
    st.forEach((r) => { if (r.type === 'transport' && r.selectedCandidatePairId) pair = st.get(r.selectedCandidatePairId); });
    const local = pair && st.get(pair.localCandidateId);
    out.push(local ? local.candidateType + '/' + local.protocol : 'none');
  }
  return out.join(',');
})()`

// selectedPairs reads selectedPairScript on a page.
func selectedPairs(t *testing.T, p *page) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](selectedPairScript, chromedp.EvalAwaitPromise))
	if err != nil {
		return "error: " + err.Error()
	}
	return got
}

// callAcrossNetworks opens a therapist's page in one browser and a
// client's in another, started with clientOpts, admits the client, waits
// until each plays the other's video, and checks that the therapist's
// console names the client's transport.
func callAcrossNetworks(t *testing.T, n *node, room, wantTransport, artifact string, clientOpts ...chromedp.ExecAllocatorOption) (therapist, client *page) {
	t.Helper()
	therapist, client = newTab(t, startBrowser(t)), newTab(t, startBrowser(t, clientOpts...))
	for _, tab := range []struct {
		p               *page
		sub, name       string
		role            rooms.Role
		waitsForConsole bool
	}{
		{therapist, "therapist-1", "Dana", rooms.RoleTherapist, true},
		{client, "client-1", "Alex", rooms.RoleClient, false},
	} {
		link := n.url + "/join#token=" + n.joinToken(t, tab.sub, tab.name, tab.role, room)
		if err := step(tab.p, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`video[data-local]`))); err != nil {
			t.Fatalf("%s: open the join link: %v", tab.name, err)
		}
		click(t, tab.p, `[data-action="join"]`)
		if tab.waitsForConsole {
			if err := step(tab.p, chromedp.WaitVisible(chromedp.CSS(`[data-console]`))); err != nil {
				t.Fatalf("the therapist's page shows no console: %v", err)
			}
		}
	}
	admit(t, therapist, "Alex")
	waitForEachOther(t, []*page{therapist, client})
	alexID := probe(client).Self
	waitFor(t, therapist, fmt.Sprintf("Alex's transport %q in the console", wantTransport), fmt.Sprintf(
		`document.querySelector('[data-present] [data-action="remove"][data-participant=%q]')?.closest('li').querySelector('[data-transport]').dataset.value === %q`,
		alexID, wantTransport))
	saveArtifact(t, therapist, artifact)
	return therapist, client
}

// TestBrowserCallOverTCP: on a network that blocks UDP, a call still
// works: the browsers reach iopd over ICE-TCP on the media TCP port, video
// plays both ways, and the therapist's console says "TCP".
func TestBrowserCallOverTCP(t *testing.T) {
	if !inNetnsWithoutUDP(t) {
		return
	}
	n := testNode(t)
	if n.sfu.TCPAddr() == nil {
		t.Fatal("the test node has no media TCP port")
	}
	room := "browser-tcp-" + token.RandomID(3)
	therapist, client := callAcrossNetworks(t, n, room, "tcp", "iop-console-tcp.png")
	if pairs := selectedPairs(t, client); !strings.Contains(pairs, "/tcp") || strings.Contains(pairs, "/udp") {
		t.Errorf("the blocked client's candidate pairs: %s, want TCP only", pairs)
	}
	text, _ := evaluate[string](therapist, `document.querySelector('[data-present]').innerText`)
	if !strings.Contains(text, "Network: TCP") {
		t.Errorf("the console's list of people does not say TCP: %q", text)
	}
	checkConsole(t, therapist, client)
}

// TestBrowserCallThroughTURN: a client whose browser may send UDP only
// through TURN (the disable_non_proxied_udp policy), with ICE-TCP off, can
// only come through a TURN relay: iopd hands its browser credentials for
// the (test's own) TURN server, video plays both ways, and the therapist's
// console says "relay".
func TestBrowserCallThroughTURN(t *testing.T) {
	turnURL := startTURN(t, testTURNSecret)
	n := testNode(t, withTURN(turnURL), func(c *config) { c.TCPPort = "off" })
	if n.sfu.TCPAddr() != nil {
		t.Fatal("ICE-TCP is on")
	}
	room := "browser-turn-" + token.RandomID(3)
	therapist, client := callAcrossNetworks(t, n, room, "relay", "iop-console-relay.png", proxiedUDPOnly(t))
	if pairs := selectedPairs(t, client); !strings.Contains(pairs, "relay/") {
		t.Errorf("the blocked client's candidate pairs: %s, want relayed ones", pairs)
	}
	_, body := getMetrics(t, n)
	if !strings.Contains(body, `iop_participants_by_transport{transport="relay"} 1`+"\n") {
		t.Errorf("/metrics does not count one relayed participant:\n%s", grepLines(body, "by_transport"))
	}
	checkConsole(t, therapist, client)
}

// getMetrics reads /metrics.
func getMetrics(t *testing.T, n *node) (int, string) {
	t.Helper()
	resp, err := http.Get(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// connectivityOutcome opens a client's join link in tab and waits for the
// connection check beside the join button to finish; it returns the
// outcome, the paths' results and the words the page shows.
func connectivityOutcome(t *testing.T, n *node, tab *page, room string) (outcome, paths, words string) {
	t.Helper()
	link := n.url + "/join#token=" + n.joinToken(t, "client-1", "Alex", rooms.RoleClient, room)
	if err := step(tab, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`[data-connectivity]`))); err != nil {
		t.Fatalf("open the join link: %v", err)
	}
	const done = `(() => { const o = document.querySelector('[data-connectivity]').dataset.outcome; return o !== '' && o !== 'checking'; })()`
	ctx, cancel := context.WithTimeout(tab.ctx, 30*time.Second) // three paths of up to 8 s each, in parallel
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](done, chromedp.WithPollingInterval(200*time.Millisecond))); err != nil {
		text, _ := evaluate[string](tab, visibleText)
		t.Fatalf("the connection check never finished (%v); the page shows: %q", err, text)
	}
	type result struct{ Outcome, Paths, Words string }
	r, err := evaluate[result](tab, `(() => { const b = document.querySelector('[data-connectivity]');
  return { outcome: b.dataset.outcome, paths: b.dataset.paths, words: b.innerText.replace(/\s+/g, ' ').trim() }; })()`)
	if err != nil {
		t.Fatal(err)
	}
	return r.Outcome, r.Paths, r.Words
}

// wantCheck checks one connection check's outcome, paths and words.
func wantCheck(t *testing.T, outcome, paths, words, wantOutcome, wantPaths, wantWords string) {
	t.Helper()
	if outcome != wantOutcome || paths != wantPaths || !strings.Contains(words, wantWords) {
		t.Errorf("connection check: %s %s %q; want %s %s and the words %q", outcome, paths, words, wantOutcome, wantPaths, wantWords)
	}
}

// TestBrowserConnectivityOpen: on a network that blocks nothing, the join
// page's check finds every path open and says video calls work well.
func TestBrowserConnectivityOpen(t *testing.T) {
	n := testNode(t, withTURN(startTURN(t, testTURNSecret)))
	tab := newTab(t, startBrowser(t))
	outcome, paths, words := connectivityOutcome(t, n, tab, "check-open")
	wantCheck(t, outcome, paths, words, "udp", `{"udp":"ok","tcp":"ok","relay":"ok"}`, "Video calls work well on this network")
	saveScreenshot(t, tab, "iop-check-open.png")
	checkConsole(t, tab)
}

// TestBrowserConnectivityWithoutUDP: on a network that blocks UDP, the
// check finds UDP (and the relay, whose way to iopd is UDP too) blocked and
// a direct TCP connection open, and says so.
func TestBrowserConnectivityWithoutUDP(t *testing.T) {
	if !inNetnsWithoutUDP(t) {
		return
	}
	n := testNode(t, withTURN(startTURN(t, testTURNSecret)))
	tab := newTab(t, startBrowser(t))
	outcome, paths, words := connectivityOutcome(t, n, tab, "check-no-udp")
	wantCheck(t, outcome, paths, words, "tcp", `{"udp":"blocked","tcp":"ok","relay":"blocked"}`, "a direct connection works")
	checkConsole(t, tab)
}

// TestBrowserConnectivityRelayOnly: a browser that may send UDP only
// through TURN (disable_non_proxied_udp), facing an iopd without ICE-TCP,
// hears that it is connected through a relay where iopd has one, and that
// its network blocks video calls, with the phone option, where it has none.
func TestBrowserConnectivityRelayOnly(t *testing.T) {
	noTCP := func(c *config) { c.TCPPort = "off" }
	withRelay := testNode(t, withTURN(startTURN(t, testTURNSecret)), noTCP)
	without := testNode(t, noTCP)
	browser := startBrowser(t, proxiedUDPOnly(t))
	tab := newTab(t, browser)
	outcome, paths, words := connectivityOutcome(t, withRelay, tab, "check-relay")
	wantCheck(t, outcome, paths, words, "relay", `{"udp":"blocked","tcp":"untested","relay":"ok"}`, "Connected through a relay; video may be slower")
	saveScreenshot(t, tab, "iop-check-relay.png")
	outcome, paths, words = connectivityOutcome(t, without, tab, "check-blocked")
	wantCheck(t, outcome, paths, words, "blocked", `{"udp":"blocked","tcp":"untested","relay":"untested"}`, "Your network blocks video calls. Ask your program for the phone option")
	saveScreenshot(t, tab, "iop-check-blocked.png")
	checkConsole(t, tab)
}

// TestBrowserWeakLinkJudgement: the weak-connection banner follows what the
// browser measures of its network, not how busy the computers are: a sound
// link with small incoming video, or losing packets or upload estimate
// while the round trip stays short (an overloaded server or page), is not
// weak; a long round trip, or loss or a tiny upload estimate with a
// strained round trip, is.
func TestBrowserWeakLinkJudgement(t *testing.T) {
	n := testNode(t)
	tab := newTab(t, startBrowser(t))
	if err := step(tab, chromedp.Navigate(n.url+"/")); err != nil {
		t.Fatal(err)
	}
	const script = `(async () => {
  const { judge } = await import('/js/linkquality.js');
  // One sample a second for 9 s; f(i) gives what changes.
  const run = (f) => judge(Array.from({ length: 10 }, (_, i) => ({
    t: i * 1000, rtt: 0.02, downLost: 0, downReceived: i * 100, upLost: 0, upSent: i * 100, uplink: 1500000, ...f(i) })));
  return {
    sound: run(() => ({})),
    busy: run((i) => ({ uplink: 300000, rtt: 0.09, downLost: i })),
    short: judge([{ t: 0, rtt: 2 }, { t: 3000, rtt: 2 }]),
    rtt: run(() => ({ rtt: 0.8 })),
    oneSlowRTT: run((i) => ({ rtt: i === 4 ? 0.8 : 0.03 })),
    busyLoss: run((i) => ({ downLost: i * 15, rtt: 0.045, uplink: 290000 })),
    downLoss: run((i) => ({ downLost: i * 15, rtt: 0.3 })),
    busyUpLoss: run((i) => ({ upLost: i * 12, rtt: 0.004, uplink: 551000 })),
    upLoss: run((i) => ({ upLost: i * 12, rtt: 0.25 })),
    fewPackets: run((i) => ({ downLost: i, downReceived: i * 5, upSent: i * 5 })),
    busyUplink: run(() => ({ uplink: 77000, rtt: 0.055 })),
    uplink: run(() => ({ uplink: 90000, rtt: 0.2 })),
  };
})()`
	ctx, cancel := context.WithTimeout(tab.ctx, stepTimeout)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]struct {
		Weak bool   `json:"weak"`
		Why  string `json:"why"`
	}](script, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"sound": "", "busy": "", "busyLoss": "", "busyUpLoss": "", "busyUplink": "", "short": "", "oneSlowRTT": "", "fewPackets": "",
		"rtt": "rtt", "downLoss": "loss", "upLoss": "loss", "uplink": "uplink",
	} {
		if g := got[name]; g.Weak != (want != "") || g.Why != want {
			t.Errorf("%s: weak %t (%q), want weak %t (%q)", name, g.Weak, g.Why, want != "", want)
		}
	}
	checkConsole(t, tab)
}

// TestBrowserCallThroughEmbeddedTURN: an iopd installed alone, with its
// embedded TURN server (IOP_TURN_PORT) and no ICE-TCP, still reaches a
// client whose browser may send UDP only through TURN: video plays both ways
// through iopd's own relay.
func TestBrowserCallThroughEmbeddedTURN(t *testing.T) {
	n := testNode(t, func(c *config) {
		c.TCPPort = "off"
		c.TURNPort = "0"
	})
	if n.turn == nil {
		t.Fatal("no embedded TURN server")
	}
	room := "browser-embedded-turn-" + token.RandomID(3)
	therapist, client := callAcrossNetworks(t, n, room, "relay", "iop-console-embedded-relay.png", proxiedUDPOnly(t))
	if pairs := selectedPairs(t, client); !strings.Contains(pairs, "relay/") {
		t.Errorf("the blocked client's candidate pairs: %s, want relayed ones", pairs)
	}
	checkConsole(t, therapist, client)
}
