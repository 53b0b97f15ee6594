package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// iopdBin is the iopd binary TestMain built for the smoke tests.
var iopdBin string

// TestMain doubles as the relay child (the tool starts its own binary with
// relayChildFlag; under test that binary is this one) and builds iopd once,
// with -race when the tests run with it.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == relayChildFlag {
		if err := runRelayChild(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "relay child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "iopload-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	iopdBin = filepath.Join(dir, "iopd")
	args := []string{"build", "-o", iopdBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", append(args, "iop/cmd/iopd")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build iopd: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// testConfig is a small run against a spawned iopd; CI's real Redis is
// used when IOP_TEST_REDIS_URL is set.
func testConfig(t *testing.T, perRoom int) *config {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A race-enabled iopd would sleep a second on exit.
	t.Setenv("GORACE", "atexit_sleep_ms=0")
	return &config{
		Spawn: true, IOPD: iopdBin, RedisURL: os.Getenv("IOP_TEST_REDIS_URL"),
		Rooms: 1, PerRoom: perRoom, BitrateKbps: 300, Layers: 1, FPS: 30, Publisher: publisherChrome,
		JoinRate: 20, Duration: 2 * time.Second, Warmup: 300 * time.Millisecond, Slice: time.Second,
		FlowTimeout: 20 * time.Second, Settle: 10 * time.Second,
		ChurnStay: time.Second,
		relayExe:  exe,
		progress:  testWriter{t},
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// checkServerClean fails unless iopd, once everyone left, holds no
// participant, socket or PeerConnection and its goroutines are back near
// where they started. On the embedded Redis each pooled connection costs
// two goroutines that stay, so the bound allows the pool to have grown.
func checkServerClean(t *testing.T, rep *Report, participants int) {
	t.Helper()
	b, a := rep.Server.Before, rep.Server.After
	if a.Participants != 0 || a.Sockets != 0 || a.PeerConnections != 0 {
		t.Errorf("after everyone left iopd holds %d participants, %d sockets, %d PeerConnections", a.Participants, a.Sockets, a.PeerConnections)
	}
	slack := 5
	if rep.embeddedRedis {
		slack += 2 * participants
	}
	if a.Goroutines > b.Goroutines+slack {
		t.Errorf("iopd goroutines: %d before the run, %d after everyone left (allowed %d more)", b.Goroutines, a.Goroutines, slack)
	}
	if rep.Server.Loaded.Goroutines <= b.Goroutines {
		t.Errorf("iopd goroutines under load %d, before %d: the loaded snapshot is not under load", rep.Server.Loaded.Goroutines, b.Goroutines)
	}
	if rep.raceReports > 0 {
		t.Errorf("iopd reported %d data races", rep.raceReports)
	}
}

// checkFirstFrames fails unless each of n participants showed a frame of
// every other one's video: the publishers keyframe only when asked, as
// Chrome does.
func checkFirstFrames(t *testing.T, rep *Report, n int) {
	t.Helper()
	f := rep.FirstFrame
	if f == nil || f.Streams != n*(n-1) || f.Shown != f.Streams {
		t.Errorf("time to first frame: %+v, want all %d videos shown", f, n*(n-1))
	}
}

// checkPath fails unless media flowed on every stream with little loss.
func checkPath(t *testing.T, name string, p *PathReport) {
	t.Helper()
	if p == nil {
		t.Fatalf("%s: no measurement", name)
	}
	if p.Streams == 0 || p.StreamsReceiving != p.Streams {
		t.Errorf("%s: %d of %d streams delivered packets: %v", name, p.StreamsReceiving, p.Streams, p.Missing)
	}
	if p.ForwardedPacketsPerSec <= 0 || p.SentPacketsPerSecond <= 0 {
		t.Errorf("%s: sent %.0f, forwarded %.0f packets/s", name, p.SentPacketsPerSecond, p.ForwardedPacketsPerSec)
	}
	if p.LossPercent > 20 {
		t.Errorf("%s: %.1f%% loss on loopback", name, p.LossPercent)
	}
	if p.Latency.P50 <= 0 {
		t.Errorf("%s: no latency measured", name)
	}
}

// TestSmokeFanout is a short W1: four participants at 300 kbps for 2 s
// through iopd and the bare relay in turns. It checks correctness only:
// every subscriber gets every publisher, loss is small, reports render,
// nothing stays behind in the server or in this process.
func TestSmokeFanout(t *testing.T) {
	goroutines := runtime.NumGoroutine()
	c := testConfig(t, 4)
	rep, err := run(context.Background(), c)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rep.Joins.Succeeded != 4 {
		t.Fatalf("joins: %d of 4 succeeded: %v", rep.Joins.Succeeded, rep.Joins.Errors)
	}
	checkPath(t, "iopd", rep.IOPD)
	checkPath(t, "relay", rep.Relay)
	if rep.IOPD.Streams != 4*3*2 {
		t.Errorf("iopd: %d streams expected, want 24", rep.IOPD.Streams)
	}
	if rep.Joins.Measured != 3 {
		t.Errorf("join time measured for %d participants, want 3 (all but the first)", rep.Joins.Measured)
	}
	checkFirstFrames(t, rep, 4)
	checkServerClean(t, rep, 4)

	var text, js bytes.Buffer
	rep.writeText(&text)
	if err := rep.writeJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CPU us per forwarded packet", "latency p50/p99/p99.9", "goroutines", "time to first frame"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("the JSON report does not read back: %v", err)
	}
	if back.IOPD == nil || back.Relay == nil || back.IOPD.ForwardedPacketsPerSec != rep.IOPD.ForwardedPacketsPerSec || back.Joins.Succeeded != 4 {
		t.Errorf("the JSON report reads back as %+v", back)
	}
	t.Logf("report:\n%s", text.String())
	waitGoroutines(t, goroutines)
}

// TestSmokeJoinStorm is a short W3: six participants join within a second;
// each but the first sees a remote keyframe, and nothing stays behind.
func TestSmokeJoinStorm(t *testing.T) {
	c := testConfig(t, 6)
	c.JoinRate, c.Duration, c.NoRelay = 6, time.Second, true
	rep, err := run(context.Background(), c)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rep.Joins.Succeeded != 6 {
		t.Fatalf("joins: %d of 6 succeeded: %v", rep.Joins.Succeeded, rep.Joins.Errors)
	}
	if rep.Joins.Measured != 5 || rep.Joins.P95ms <= 0 {
		t.Errorf("join time measured for %d participants (p95 %.0f ms), want 5", rep.Joins.Measured, rep.Joins.P95ms)
	}
	if p := rep.IOPD; p == nil || p.StreamsReceiving != p.Streams || p.Streams != 6*5*2 {
		t.Errorf("iopd streams: %+v", p)
	}
	if rep.Relay != nil {
		t.Errorf("-no-relay ran the relay")
	}
	checkFirstFrames(t, rep, 6)
	checkServerClean(t, rep, 6)
}

// TestSmokeSimulcast is a short W2: three participants publish three
// layers; subscribers receive the medium one (the server's choice for a
// grid tile), the low one after asking for it with layer messages, or the
// low one when they report a weak connection (REMB of 100 kbps for two
// videos of 60/200/600 kbps and two audios: nothing above the low layers
// fits, and the estimate is below what arrives, so the server does not
// probe upward), from iopd as from the relay, and nothing else; audio flows
// throughout.
func TestSmokeSimulcast(t *testing.T) {
	for _, tc := range []struct {
		name     string
		quality  string
		rembKbps int
		layer    int
	}{{"grid", "", 0, 1}, {"asked low", "low", 0, 0}, {"weak connection", "", 100, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(t, 3)
			c.Layers, c.Quality, c.RembKbps, c.BitrateKbps = 3, tc.quality, tc.rembKbps, 600
			rep, err := run(context.Background(), c)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if rep.Joins.Succeeded != 3 {
				t.Fatalf("joins: %d of 3 succeeded: %v", rep.Joins.Succeeded, rep.Joins.Errors)
			}
			for _, p := range []struct {
				name string
				p    *PathReport
			}{{"iopd", rep.IOPD}, {"relay", rep.Relay}} {
				checkPath(t, p.name, p.p)
				if len(p.p.VideoByLayer) != maxLayers {
					t.Fatalf("%s: video by layer %v", p.name, p.p.VideoByLayer)
				}
				for l, n := range p.p.VideoByLayer {
					if (l == tc.layer) != (n > 0) {
						t.Errorf("%s: subscribers received layers %v packets/s, want only layer %d", p.name, p.p.VideoByLayer, tc.layer)
						break
					}
				}
			}
			checkFirstFrames(t, rep, 3)
			checkServerClean(t, rep, 3)
			var text bytes.Buffer
			rep.writeText(&text)
			if !strings.Contains(text.String(), "video pkt/s by layer q/h/f") {
				t.Errorf("text report lacks the layers:\n%s", text.String())
			}
		})
	}
}

// waitGoroutines waits until this process is back to at most n goroutines
// (plus a few the runtime and net/http keep), so that the tool leaves no
// participant, reader or timer behind.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > n+3 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines remain, %d before the run:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestStampRoundTrip(t *testing.T) {
	payload := make([]byte, 100)
	want := stamp{flags: stampVideo | stampKey | stampLast, pub: 7, seq: 123456, sent: time.Now().UnixNano()}
	putStamp(payload, want)
	for _, tc := range []struct {
		name string
		hdr  rtp.Header
	}{
		{"plain", rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 1, SSRC: 5}},
		{"csrc and extension", func() rtp.Header {
			h := rtp.Header{Version: 2, PayloadType: 96, CSRC: []uint32{1, 2}}
			if err := h.SetExtension(1, []byte{1, 2, 3}); err != nil {
				t.Fatal(err)
			}
			return h
		}()},
		{"padding", rtp.Header{Version: 2, PayloadType: 96, Padding: true, PaddingSize: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := &rtp.Packet{Header: tc.hdr, Payload: payload}
			if tc.hdr.Padding {
				pkt.PaddingSize = tc.hdr.PaddingSize
			}
			raw, err := pkt.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, ok := readStamp(raw)
			if !ok || got != want {
				t.Fatalf("readStamp = %+v, %v; want %+v", got, ok, want)
			}
		})
	}
	if _, ok := readStamp(make([]byte, 40)); ok {
		t.Error("a packet without a stamp was read as stamped")
	}
}

// TestWindowsCountBySendTime: a packet counts in the window it was sent in,
// even if it arrives after the window closed; what is sent between windows
// counts neither as received nor as lost.
func TestWindowsCountBySendTime(t *testing.T) {
	win := &windows{}
	rx := newReceiver(win)
	var cache *rxStream
	var key streamKey
	t0 := time.Now()
	send := func(seq uint32, sent time.Time) {
		p := make([]byte, 40)
		putStamp(p, stamp{flags: stampVideo, pub: 1, seq: seq, sent: sent.UnixNano()})
		raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2}, Payload: p}).Marshal()
		rx.packet(raw, sent.Add(time.Millisecond), &cache, &key)
	}
	send(0, t0) // before any window
	win.open(t0.Add(time.Second))
	for seq := uint32(1); seq <= 10; seq++ {
		if seq != 4 { // lost
			send(seq, t0.Add(time.Second+time.Duration(seq)*time.Millisecond))
		}
	}
	win.close(t0.Add(2 * time.Second))
	send(11, t0.Add(1999*time.Millisecond)) // sent inside, arrives after the close
	send(12, t0.Add(2001*time.Millisecond)) // sent after the close
	send(12, t0.Add(2001*time.Millisecond))
	win.open(t0.Add(3 * time.Second))
	for seq := uint32(30); seq < 40; seq++ {
		send(seq, t0.Add(3*time.Second+time.Duration(seq)*time.Millisecond))
	}
	send(35, t0.Add(3035*time.Millisecond)) // a retransmitted duplicate
	win.close(t0.Add(4 * time.Second))

	var w windowStats
	w.add(rx)
	if w.packets != 20 || w.expected != 21 || w.dups != 1 {
		t.Errorf("packets %d, expected %d, duplicates %d; want 20, 21, 1", w.packets, w.expected, w.dups)
	}
	if got := w.lossPercent(); got < 4.7 || got > 4.8 {
		t.Errorf("loss %.2f%%, want 1 in 21", got)
	}
	if got := w.lat.quantile(0.5); got < time.Millisecond || got > 1020*time.Microsecond {
		t.Errorf("median latency %s, want 1ms", got)
	}
	if got := rx.received()[streamKey{pub: 1, video: true}]; got != 24 {
		t.Errorf("%d packets over the run, want 24", got)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(int64(i) * int64(time.Millisecond) / 10) // 0.1 ms .. 100 ms
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {0.999, 99900 * time.Microsecond}} {
		got := h.quantile(tc.q)
		if d := got - tc.want; d < -tc.want/50 || d > tc.want/50 {
			t.Errorf("quantile(%g) = %s, want %s within 2%%", tc.q, got, tc.want)
		}
	}
	var o histogram
	o.add(-5) // a clock step backwards counts as zero
	h.merge(&o)
	if h.n != 1001 || h.quantile(0) != 0 {
		t.Errorf("after merge: n %d, min %s", h.n, h.quantile(0))
	}
	for us := uint64(0); us < 1<<30; us = us*3/2 + 1 {
		if v := histValue(histIndex(us)); v < float64(us)*0.98 || v > float64(us)*1.02+1 {
			t.Fatalf("bucket of %d us reads back as %.0f", us, v)
		}
	}
}

// countingSink records what a source sends, per video layer.
type countingSink struct {
	videoBytes, videoPackets, keyframes [maxLayers]int
	audioPackets                        int
	seqs                                map[streamKey]uint32
	err                                 error // the first wrong packet
}

func newCountingSink() *countingSink { return &countingSink{seqs: map[streamKey]uint32{}} }

func (s *countingSink) writeRTP(video bool, layer int, hdr *rtp.Header, payload []byte) error {
	err := s.check(video, layer, hdr, payload)
	if err != nil && s.err == nil {
		s.err = err
	}
	return err
}

func (s *countingSink) check(video bool, layer int, hdr *rtp.Header, payload []byte) error {
	raw, err := (&rtp.Packet{Header: *hdr, Payload: payload}).Marshal()
	if err != nil {
		return err
	}
	st, ok := readStamp(raw)
	if !ok {
		return fmt.Errorf("packet without stamp")
	}
	if video && int(st.layer) != layer {
		return fmt.Errorf("layer %d packet stamped layer %d", layer, st.layer)
	}
	k := streamKey{video: video, layer: st.layer}
	if want := s.seqs[k]; st.seq != want {
		return fmt.Errorf("%+v seq %d, want %d", k, st.seq, want)
	}
	s.seqs[k]++
	if video {
		s.videoBytes[layer] += len(payload)
		s.videoPackets[layer]++
		if st.flags&(stampKey|stampFirst) == stampKey|stampFirst {
			s.keyframes[layer]++
			if payload[0] != 0x10 || payload[1]&1 != 0 {
				return fmt.Errorf("keyframe payload starts %x", payload[:2])
			}
		}
		if hdr.Marker != (st.flags&stampLast != 0) {
			return fmt.Errorf("marker %v on flags %b", hdr.Marker, st.flags)
		}
		if len(payload) > defaultTraffic().MaxPayload {
			return fmt.Errorf("payload of %d bytes", len(payload))
		}
	} else {
		s.audioPackets++
	}
	return nil
}

// TestSourceShape: frames average the configured bitrate, a keyframe
// comes every interval, and sequence numbers have no gap.
func TestSourceShape(t *testing.T) {
	for _, layers := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d layers", layers), func(t *testing.T) {
			sink := newCountingSink()
			tr := defaultTraffic()
			tr.Layers = layers
			src := newSource(3, tr, sink)
			keyEvery := 90
			const frames = 900 // 30 s
			for range frames {
				src.sendFrame(keyEvery)
				src.sendAudio()
			}
			if sink.err != nil {
				t.Fatal(sink.err)
			}
			// 1,500 kbps alone, or about 150, 500 and 1,500 kbps.
			wantKbps := []float64{float64(tr.VideoKbps)}
			if layers == 3 {
				wantKbps = []float64{150, 500, 1500}
			}
			for l, want := range wantKbps {
				kbps := float64(sink.videoBytes[l]) * 8 / (frames / 30.0) / 1000
				if kbps < 0.9*want || kbps > 1.1*want {
					t.Errorf("layer %d at %.0f kbps, want about %.0f", l, kbps, want)
				}
				if sink.keyframes[l] != frames/keyEvery {
					t.Errorf("layer %d: %d keyframes in %d frames, want %d", l, sink.keyframes[l], frames, frames/keyEvery)
				}
			}
			for l := layers; l < maxLayers; l++ {
				if sink.videoPackets[l] != 0 {
					t.Errorf("layer %d sent without simulcast", l)
				}
			}
			// The eager publisher keys only the layer a request names.
			src.tr.Publisher = publisherEager
			src.sendFrame(keyEvery) // frame 900: a periodic keyframe
			before := sink.keyframes
			src.requestKeyframe(layers - 1)
			src.sendFrame(keyEvery)
			for l := range layers {
				want := before[l]
				if l == layers-1 {
					want++
				}
				if sink.keyframes[l] != want {
					t.Errorf("after a keyframe request for layer %d: layer %d has %d keyframes, want %d", layers-1, l, sink.keyframes[l], want)
				}
			}
			// Chrome ignores a request within 500 ms of its last keyframe
			// and keys every layer for one after that.
			src.tr.Publisher = publisherChrome
			now := time.Now()
			src.clock = func() time.Time { return now }
			src.sendFrame(keyEvery) // frame 902: a keyframe (the request above)
			before = sink.keyframes
			now = now.Add(400 * time.Millisecond)
			src.requestKeyframe(0)
			src.sendFrame(keyEvery)
			if sink.keyframes != before || src.ignored.Load() != 1 {
				t.Errorf("Chrome keyed layers %v -> %v for a request 400 ms after a keyframe (%d ignored)", before, sink.keyframes, src.ignored.Load())
			}
			now = now.Add(200 * time.Millisecond)
			src.requestKeyframe(0)
			src.sendFrame(keyEvery)
			for l := range layers {
				if sink.keyframes[l] != before[l]+1 {
					t.Errorf("Chrome keyed layers %v -> %v for a request 600 ms after a keyframe, want every layer", before, sink.keyframes)
					break
				}
			}
			total := sink.audioPackets
			for l := range layers {
				total += sink.videoPackets[l]
			}
			if src.sent.Load() != int64(total) {
				t.Errorf("sent %d, sink got %d", src.sent.Load(), total)
			}
		})
	}
}

// TestRelayFanOut runs the relay loop in process: each member of a room
// gets every other member's audio and the video layer it joined for,
// never its own, and nothing from another room; a member that left gets
// nothing more.
func TestRelayFanOut(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- relay(conn) }()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	addr := conn.LocalAddr().(*net.UDPAddr).AddrPort()

	win := &windows{}
	tr := defaultTraffic()
	tr.VideoKbps, tr.Layers = 100, 3
	rooms := []uint32{0, 0, 0, 1}
	layers := []int{0, 1, 2, 1}
	rxs := make([]*receiver, len(rooms))
	peers := make([]*relayPeer, len(rooms))
	var wg sync.WaitGroup
	for i, room := range rooms {
		rxs[i] = newReceiver(win)
		p, err := joinRelay(addr, room, uint32(i), tr, layers[i], rxs[i])
		if err != nil {
			t.Fatal(err)
		}
		peers[i] = p
		t.Cleanup(p.close)
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok := true
		for i := range 3 {
			got := rxs[i].received()
			for j := range 3 {
				if j != i && (got[streamKey{pub: uint32(j), video: true, layer: byte(layers[i])}] == 0 || got[streamKey{pub: uint32(j)}] == 0) {
					ok = false
				}
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("room 0 members do not all receive each other: %v %v %v", rxs[0].received(), rxs[1].received(), rxs[2].received())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := range 3 {
		for k := range rxs[i].received() {
			if k.pub == uint32(i) || k.pub == 3 {
				t.Errorf("member %d of room 0 receives from %d", i, k.pub)
			}
		}
		rxs[i].mu.Lock()
		for k := range rxs[i].streams {
			if k.video && int(k.layer) != layers[i] {
				t.Errorf("member %d joined for layer %d and receives layer %d of %d", i, layers[i], k.layer, k.pub)
			}
		}
		rxs[i].mu.Unlock()
	}
	for k := range rxs[3].received() {
		t.Errorf("the only member of room 1 receives from %d", k.pub)
	}
	if err := testRelayLeave(peers[2], addr); err != nil {
		t.Error(err)
	}
}

// testRelayLeave checks that after leaving, a member's socket gets nothing.
func testRelayLeave(p *relayPeer, relayAddr netip.AddrPort) error {
	p.close()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	defer c.Close()
	// An unknown address's packets are dropped, not relayed or answered.
	if _, err := c.WriteToUDPAddrPort([]byte("not joined"), relayAddr); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _, err := c.ReadFromUDPAddrPort(make([]byte, 1500)); err == nil {
		return fmt.Errorf("a socket that never joined received %d bytes", n)
	}
	return nil
}

// TestRelayChild starts the relay as a child process, as the tool does, and
// stops it by closing its stdin.
func TestRelayChild(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, err := startRelay(context.Background(), exe)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := procCPU(r.pid()); err != nil {
		t.Errorf("read the relay's CPU: %v", err)
	}
	rx := newReceiver(&windows{})
	p, err := joinRelay(r.addr, 0, 0, defaultTraffic(), 0, rx)
	if err != nil {
		r.stop()
		t.Fatal(err)
	}
	p.close()
	r.stop()
	// Killed after the grace period, it would not have exited successfully.
	if r.cmd.ProcessState == nil || !r.cmd.ProcessState.Exited() || !r.cmd.ProcessState.Success() {
		t.Errorf("relay child ended with %v", r.cmd.ProcessState)
	}
}

func TestCLIFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-rooms", "2"}, "give -spawn"},
		{[]string{"-spawn", "-url", "http://127.0.0.1:1"}, "give -spawn"},
		{[]string{"-spawn", "-workload", "W9"}, "W1, W2, W3 or W4"},
		{[]string{"-spawn", "-layers", "2"}, "-layers 2"},
		{[]string{"-spawn", "-quality", "low"}, "-quality needs -layers 3"},
		{[]string{"-spawn", "-layers", "3", "-quality", "best"}, "-quality needs -layers 3"},
		{[]string{"-spawn", "-ramp", "-rooms", "3", "-max-rooms", "2"}, "-max-rooms 2"},
		{[]string{"-spawn", "-per-room", "1"}, "-per-room"},
		{[]string{"-spawn", "-join-rate", "0"}, "-join-rate"},
		{[]string{"-spawn", "-publisher", "firefox"}, "-publisher"},
		{[]string{"-spawn", "-keyframe-interval", "50ms"}, "-keyframe-interval"},
		{[]string{"-url", "http://10.1.2.3:8080", "-secret", strings.Repeat("s", 32)}, "loopback only"},
		{[]string{"-url", "http://127.0.0.1:1", "-secret", "short"}, "-secret"},
		{[]string{"-url", "http://127.0.0.1:1", "-iopd", "x", "-secret", strings.Repeat("s", 32)}, "-iopd and -redis-url are for -spawn"},
	} {
		err := cli(context.Background(), tc.args, func(string) string { return "" }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("iopload %s: %v, want an error about %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

func TestWorkloadPresetYieldsToFlags(t *testing.T) {
	noEnv := func(string) string { return "" }
	c, err := parseArgs([]string{"-spawn", "-workload", "w1", "-per-room", "4"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Workload != "W1" || c.Rooms != 1 || c.PerRoom != 4 || c.BitrateKbps != 1500 || c.Duration != 20*time.Second {
		t.Errorf("-workload W1 -per-room 4: %+v", c)
	}
	c, err = parseArgs([]string{"-spawn", "-workload", "W4", "-wait-gc=false"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Rooms != 2 || c.BitrateKbps != 300 || c.WaitGC {
		t.Errorf("-workload W4 -wait-gc=false: %+v", c)
	}
	c, err = parseArgs([]string{"-spawn", "-workload", "W4"}, noEnv, io.Discard)
	if err != nil || !c.WaitGC {
		t.Errorf("-workload W4 does not wait for GC: %+v, %v", c, err)
	}
	c, err = parseArgs([]string{"-spawn", "-workload", "W2"}, noEnv, io.Discard)
	if err != nil || !c.Ramp || c.Layers != 3 || c.PerRoom != 15 || c.Rooms != 1 || c.subscribedLayer() != 1 {
		t.Errorf("-workload W2: %+v, %v", c, err)
	}
	c, err = parseArgs([]string{"-spawn", "-workload", "W2", "-ramp=false", "-rooms", "3", "-quality", "high"}, noEnv, io.Discard)
	if err != nil || c.Ramp || c.Rooms != 3 || c.subscribedLayer() != 2 {
		t.Errorf("-workload W2 -ramp=false -rooms 3 -quality high: %+v, %v", c, err)
	}
}

// TestRampMiss: a W2 step is sustained only while every stream delivers,
// no join fails, loss stays under 0.5 % and latency p99 under 20 ms.
func TestRampMiss(t *testing.T) {
	good := func() *Report {
		return &Report{Joins: Joins{Succeeded: 15}, IOPD: &PathReport{Streams: 420, StreamsReceiving: 420, LossPercent: 0.1, Latency: Quantiles{P99: 5}}}
	}
	if why := rampMiss(good()); why != "" {
		t.Errorf("a good step missed: %s", why)
	}
	for want, spoil := range map[string]func(*Report){
		"loss":         func(r *Report) { r.IOPD.LossPercent = 0.5 },
		"latency p99":  func(r *Report) { r.IOPD.Latency.P99 = 20 },
		"streams":      func(r *Report) { r.IOPD.StreamsReceiving = 419 },
		"joins failed": func(r *Report) { r.Joins.Failed = 1 },
		"videos showed": func(r *Report) {
			r.FirstFrame = &FirstFrames{Streams: 210, Shown: 209}
		},
		"nothing": func(r *Report) { r.IOPD = nil },
	} {
		r := good()
		spoil(r)
		if why := rampMiss(r); !strings.Contains(why, want) {
			t.Errorf("spoiled %s: rampMiss says %q", want, why)
		}
	}
}

func TestCommandHidesSecret(t *testing.T) {
	got := strings.Join(redactArgs([]string{"-url", "http://127.0.0.1:1", "-secret", "s3cr3t", "--secret=s3cr3t", "-rooms", "2"}), " ")
	if strings.Contains(got, "s3cr3t") || got != "-url http://127.0.0.1:1 -secret REDACTED --secret=REDACTED -rooms 2" {
		t.Errorf("redacted: %q", got)
	}
}

func TestLineWatch(t *testing.T) {
	w := newLineWatch("iopd is serving on ")
	for _, chunk := range []string{"{\"level\":\"INFO\"}\niopd is ser", "ving on http://127.0.0.1:4", "1234\nmore\n"} {
		if n, err := w.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	select {
	case got := <-w.found:
		if got != "http://127.0.0.1:41234" {
			t.Errorf("found %q", got)
		}
	default:
		t.Fatal("the line was not found")
	}
	_, _ = w.Write([]byte("iopd is serving on http://other\n")) // only the first counts; must not block
}

func TestProcReaders(t *testing.T) {
	cpu, err := procCPU(os.Getpid())
	if err != nil || cpu < 0 {
		t.Fatalf("procCPU(self) = %v, %v", cpu, err)
	}
	if rss := procRSS(os.Getpid()); rss < 1<<20 {
		t.Errorf("procRSS(self) = %.0f bytes", rss)
	}
	if hz := clockTicks(); hz < 10 || hz > 10000 {
		t.Errorf("clock ticks %g", hz)
	}
	if busy, total := machineCPU(); total <= 0 || busy > total {
		t.Errorf("machine CPU busy %g of %g", busy, total)
	}
}

// TestWholeKeyframe: a publisher's tile shows its first frame once every
// packet of a keyframe has arrived, a retransmission included; a keyframe
// with a packet missing shows nothing.
func TestWholeKeyframe(t *testing.T) {
	rx := newReceiver(&windows{})
	var cache *rxStream
	var key streamKey
	t0 := time.Now()
	send := func(seq uint32, flags byte, at int) {
		p := make([]byte, 40)
		putStamp(p, stamp{flags: stampVideo | flags, pub: 7, seq: seq, sent: t0.UnixNano()})
		raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2}, Payload: p}).Marshal()
		rx.packet(raw, t0.Add(time.Duration(at)*time.Millisecond), &cache, &key)
	}
	send(10, stampKey|stampFirst, 1)
	send(12, stampKey, 2) // 11 lost
	send(13, stampKey|stampLast, 3)
	send(14, stampFirst|stampLast, 4) // a delta frame
	if rx.shows(7) {
		t.Fatal("a keyframe with a packet missing shows a frame")
	}
	send(11, stampKey, 50) // the retransmission
	if d, ok := rx.firstFrame("", 7); ok || !rx.shows(7) {
		t.Fatalf("after the retransmission: shows %v (first frame %v, %v without an offer)", rx.shows(7), d, ok)
	}
	rx.answered("v=0\r\na=msid:pub-7 video-1\r\n", t0)
	if d, ok := rx.firstFrame("pub-7", 7); !ok || d != 50*time.Millisecond {
		t.Errorf("first frame %v after the answer (%v), want 50ms", d, ok)
	}
}
