package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// Report is the outcome of one run, printed as text or JSON.
type Report struct {
	Workload string       `json:"workload"`
	Command  string       `json:"command"`
	Machine  Machine      `json:"machine"`
	Config   ReportConfig `json:"config"`
	Joins    Joins        `json:"joins"`
	// FirstFrame is the time to first frame of every video stream.
	FirstFrame *FirstFrames `json:"first_frame,omitempty"`
	// IOPD is the forwarding measured through iopd; Relay through the bare
	// UDP relay with the same participants and traffic, in the same run.
	IOPD  *PathReport `json:"iopd,omitempty"`
	Relay *PathReport `json:"relay,omitempty"`
	// CPUPerPacketRatio is iopd's CPU per forwarded packet over the relay's.
	CPUPerPacketRatio float64      `json:"cpu_per_packet_ratio_iopd_to_relay,omitempty"`
	Server            ServerMemory `json:"server"`
	Churn             *Churn       `json:"churn,omitempty"`
	Notes             []string     `json:"notes,omitempty"`

	raceReports   int
	embeddedRedis bool // iopd was spawned on its embedded Redis
}

// Machine describes where the run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go"`
}

// ReportConfig is the traffic shape of the run.
type ReportConfig struct {
	Rooms            int     `json:"rooms"`
	PerRoom          int     `json:"per_room"`
	VideoKbps        int     `json:"video_kbps"`
	Layers           int     `json:"layers"`
	Quality          string  `json:"quality,omitempty"`
	RembKbps         int     `json:"remb_kbps,omitempty"`
	FPS              int     `json:"fps"`
	KeyframeInterval string  `json:"keyframe_interval"`
	Publisher        string  `json:"publisher"`
	JoinRate         float64 `json:"join_rate"`
	Duration         string  `json:"duration"`
}

// PathReport is one forwarder (iopd or the relay) over the measured window.
type PathReport struct {
	Participants     int      `json:"participants"`
	Streams          int      `json:"streams"`           // (subscriber, publisher, kind) that should flow
	StreamsReceiving int      `json:"streams_receiving"` // of those, how many delivered a packet
	Missing          []string `json:"missing,omitempty"`
	WindowSeconds    float64  `json:"window_s"`
	// CPUSecondsPerSecond is the forwarder's own CPU (user + system).
	CPUSecondsPerSecond  float64 `json:"cpu_s_per_s"`
	SentPacketsPerSecond float64 `json:"sent_packets_per_s"`
	// ServerReceivedPerSec is what iopd's track readers got from the
	// publishers (its iop_rtp_packets_received_total); less than sent
	// means packets wait or drop before iopd reads them.
	ServerReceivedPerSec   float64 `json:"server_received_packets_per_s,omitempty"`
	ForwardedPacketsPerSec float64 `json:"forwarded_packets_per_s"`
	ForwardedMbps          float64 `json:"forwarded_mbps"`
	CPUMicrosPerPacket     float64 `json:"cpu_us_per_forwarded_packet"`
	// VideoByLayer is the video packets received per second of each
	// simulcast layer, lowest first (with -layers 3).
	VideoByLayer []float64 `json:"video_packets_per_s_by_layer,omitempty"`
	LossPercent  float64   `json:"loss_percent"`
	Duplicates   int64     `json:"duplicates"`
	// Latency is one-way, publisher's send call to subscriber's read, in ms.
	Latency                    Quantiles `json:"latency_ms"`
	LoadGenCPUSecondsPerSecond float64   `json:"loadgen_cpu_s_per_s"`
	MachineBusyCores           float64   `json:"machine_busy_cores"`
}

// Quantiles of a latency distribution, in milliseconds.
type Quantiles struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
}

// Joins counts join attempts and the join time: from the signaling
// socket's opening to the end of the first remote keyframe.
type Joins struct {
	Attempted int      `json:"attempted"`
	Succeeded int      `json:"succeeded"`
	Failed    int      `json:"failed"`
	Errors    []string `json:"errors,omitempty"`
	Measured  int      `json:"measured"`
	P50ms     float64  `json:"p50_ms"`
	P95ms     float64  `json:"p95_ms"`
	MaxMs     float64  `json:"max_ms"`
}

func (j *Joins) add(err error) {
	j.Attempted++
	if err == nil {
		j.Succeeded++
		return
	}
	j.Failed++
	msg := err.Error()
	for _, e := range j.Errors {
		if e == msg {
			return
		}
	}
	if len(j.Errors) < 5 {
		j.Errors = append(j.Errors, msg)
	}
}

// FirstFrames is the time to first frame of each (subscriber, publisher)
// video stream through iopd: from the answer to the subscribe offer that
// carried the publisher's tracks (when a browser shows the tile) to the
// last packet of the first keyframe from that publisher (the first frame
// a decoder can show). A stream without a keyframe shows nothing.
type FirstFrames struct {
	Streams int      `json:"streams"`
	Shown   int      `json:"shown"`
	Missing []string `json:"missing,omitempty"`
	P50ms   float64  `json:"p50_ms"`
	P95ms   float64  `json:"p95_ms"`
	MaxMs   float64  `json:"max_ms"`
	// PLIs and IgnoredPLIs are the keyframe requests the publishers
	// received and, with the Chrome model, ignored.
	PLIs        int64 `json:"plis"`
	IgnoredPLIs int64 `json:"ignored_plis"`
}

func (f *FirstFrames) setTimes(d []time.Duration) {
	f.Shown = len(d)
	f.P50ms, f.P95ms, f.MaxMs = percentiles(d)
}

func (j *Joins) setTimes(d []time.Duration) {
	j.Measured = len(d)
	j.P50ms, j.P95ms, j.MaxMs = percentiles(d)
}

// percentiles sorts d and returns its median, 95th percentile and maximum
// in milliseconds (zeros when d is empty).
func percentiles(d []time.Duration) (p50, p95, top float64) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	sortDurations(d)
	at := func(q float64) float64 { return ms(d[int(q*float64(len(d)-1)+0.5)]) }
	return at(0.5), at(0.95), ms(d[len(d)-1])
}

// snapshot is the server's state at one moment, from /metrics and /proc.
type snapshot struct {
	Goroutines int     `json:"goroutines"`
	RSSMB      float64 `json:"rss_mb"`
	// HeapAllocMB is the heap's allocated objects, live or not yet
	// collected (after two collections: live).
	HeapAllocMB     float64 `json:"heap_alloc_mb"`
	Participants    int     `json:"participants"`
	Sockets         int     `json:"sockets"`
	PeerConnections int     `json:"peer_connections"`
	// AfterGC is set when the server collected garbage after everyone left
	// and before this snapshot (see -wait-gc).
	AfterGC bool `json:"after_gc,omitempty"`

	gcs float64 // garbage collections so far
}

// ServerMemory is the server before the run, under load, and after
// everyone left; and the cost of one participant.
type ServerMemory struct {
	Before                   snapshot `json:"before"`
	Loaded                   snapshot `json:"loaded"`
	After                    snapshot `json:"after"`
	GoroutinesPerParticipant float64  `json:"goroutines_per_participant"`
	RSSPerParticipantMB      float64  `json:"rss_mb_per_participant"`
	HeapPerParticipantMB     float64  `json:"heap_alloc_mb_per_participant"`
}

// Churn is what W4's join/leave churn did.
type Churn struct {
	Seconds             float64       `json:"seconds"`
	Leaves              int           `json:"leaves"`
	Drops               int           `json:"drops"`    // left by closing the connection without a word
	NoVideo             int           `json:"no_video"` // stays that ended before a remote keyframe arrived
	CPUSecondsPerSecond float64       `json:"cpu_s_per_s"`
	Problems            []string      `json:"problems,omitempty"`
	Samples             []ChurnSample `json:"samples,omitempty"`
}

// ChurnSample is the server's state some seconds into the churn.
type ChurnSample struct {
	Seconds float64 `json:"t_s"`
	snapshot
}

func newReport(c *config) *Report {
	name := c.Workload
	if name == "" {
		name = "custom"
	}
	return &Report{
		Workload: name,
		Machine:  machine(),
		Config: ReportConfig{
			Rooms: c.Rooms, PerRoom: c.PerRoom, VideoKbps: c.BitrateKbps, Layers: c.Layers, Quality: c.Quality, RembKbps: c.RembKbps, FPS: c.FPS,
			KeyframeInterval: c.KeyframeInterval.String(), Publisher: c.traffic().Publisher, JoinRate: c.JoinRate, Duration: c.Duration.String(),
		},
	}
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// finish derives the ratios and notes what makes the figures doubtful.
func (r *Report) finish() {
	if r.IOPD != nil && r.Relay != nil && r.Relay.CPUMicrosPerPacket > 0 {
		r.CPUPerPacketRatio = r.IOPD.CPUMicrosPerPacket / r.Relay.CPUMicrosPerPacket
	}
	if n := r.Server.Loaded.Participants; n > 0 {
		b, l := r.Server.Before, r.Server.Loaded
		r.Server.GoroutinesPerParticipant = float64(l.Goroutines-b.Goroutines) / float64(n)
		r.Server.RSSPerParticipantMB = (l.RSSMB - b.RSSMB) / float64(n)
		r.Server.HeapPerParticipantMB = (l.HeapAllocMB - b.HeapAllocMB) / float64(n)
	}
	for _, p := range []struct {
		name string
		p    *PathReport
	}{{"iopd", r.IOPD}, {"relay", r.Relay}} {
		if p.p == nil {
			continue
		}
		if cores := float64(r.Machine.CPUs); p.p.MachineBusyCores > 0.9*cores {
			r.note("%s window: the machine was saturated (%.2f of %d cores busy; this load generator used %.2f): "+
				"figures are what this machine sustains, not what %s alone could", p.name, p.p.MachineBusyCores, r.Machine.CPUs, p.p.LoadGenCPUSecondsPerSecond, p.name)
		}
		if p.p.StreamsReceiving < p.p.Streams {
			r.note("%s: only %d of %d streams delivered anything: %s", p.name, p.p.StreamsReceiving, p.p.Streams, strings.Join(p.p.Missing, "; "))
		}
	}
	a, b := r.Server.Before, r.Server.After
	if b.Participants > 0 || b.Sockets > 0 || b.PeerConnections > 0 {
		r.note("after everyone left, iopd still holds %d participants, %d sockets, %d PeerConnections", b.Participants, b.Sockets, b.PeerConnections)
	}
	if b.Goroutines > a.Goroutines+2 {
		why := ""
		if r.embeddedRedis {
			why = " (on the embedded Redis each pooled Redis connection costs iopd 2 goroutines; the pool grows with concurrent joins and stays)"
		}
		r.note("after everyone left, iopd has %d goroutines, %d more than before the run%s", b.Goroutines, b.Goroutines-a.Goroutines, why)
	}
	if r.raceReports > 0 {
		r.note("iopd reported %d data race(s) in its log", r.raceReports)
	}
}

func countRaces(log string) int { return strings.Count(log, "WARNING: DATA RACE") }

func (r *Report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r *Report) writeText(w io.Writer) {
	c := r.Config
	video := fmt.Sprintf("video %d kbps", c.VideoKbps)
	if c.Layers > 1 {
		q := c.Quality
		if q == "" {
			q = "the server's choice"
		}
		video = fmt.Sprintf("simulcast video %.0f/%.0f/%d kbps (subscribers ask for %s)", float64(c.VideoKbps)*layerShare[0], float64(c.VideoKbps)*layerShare[1], c.VideoKbps, q)
	}
	if c.RembKbps > 0 {
		video += fmt.Sprintf(", subscribers report %d kbps of bandwidth", c.RembKbps)
	}
	keys := "keyframes on request"
	if c.KeyframeInterval != "0s" {
		keys = "keyframe every " + c.KeyframeInterval + " and on request"
	}
	fmt.Fprintf(w, "iopload %s: %d room(s) x %d participants, %s at %d fps (%s, %s publisher) + Opus 20 ms, joins at %g/s, %s\n",
		r.Workload, c.Rooms, c.PerRoom, video, c.FPS, keys, c.Publisher, c.JoinRate, c.Duration)
	fmt.Fprintf(w, "machine: %d x %s, Linux %s, %s\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.Kernel, r.Machine.GoVersion)
	fmt.Fprintf(w, "command: %s\n\n", r.Command)
	if r.IOPD != nil {
		i, rl := r.IOPD, r.Relay
		if rl == nil {
			rl = &PathReport{}
		}
		row := func(name, a, b, ratio string) { fmt.Fprintf(w, "  %-30s %-20s %-20s %s\n", name, a, b, ratio) }
		row("", "iopd", "bare relay", "iopd/relay")
		row("server CPU s/s", f2(i.CPUSecondsPerSecond), f2(rl.CPUSecondsPerSecond), "")
		row("sent by publishers pkt/s", f0(i.SentPacketsPerSecond), f0(rl.SentPacketsPerSecond), "")
		row("read by iopd's tracks pkt/s", f0(i.ServerReceivedPerSec), "", "")
		row("forwarded pkt/s (received)", f0(i.ForwardedPacketsPerSec), f0(rl.ForwardedPacketsPerSec), "")
		row("forwarded Mbps", f1(i.ForwardedMbps), f1(rl.ForwardedMbps), "")
		ratio := ""
		if r.CPUPerPacketRatio > 0 {
			ratio = fmt.Sprintf("%.2fx", r.CPUPerPacketRatio)
		}
		row("CPU us per forwarded packet", f2(i.CPUMicrosPerPacket), f2(rl.CPUMicrosPerPacket), ratio)
		if len(i.VideoByLayer) > 0 {
			byLayer := func(p *PathReport) string {
				if len(p.VideoByLayer) < maxLayers {
					return ""
				}
				return fmt.Sprintf("%.0f/%.0f/%.0f", p.VideoByLayer[0], p.VideoByLayer[1], p.VideoByLayer[2])
			}
			row("video pkt/s by layer q/h/f", byLayer(i), byLayer(rl), "")
		}
		row("receiver loss", fmt.Sprintf("%.3f%%", i.LossPercent), fmt.Sprintf("%.3f%%", rl.LossPercent), "")
		row("latency p50/p99/p99.9 ms", lat(i.Latency), lat(rl.Latency), "")
		row("streams delivering", fmt.Sprintf("%d/%d", i.StreamsReceiving, i.Streams), fmt.Sprintf("%d/%d", rl.StreamsReceiving, rl.Streams), "")
		row("load generator CPU s/s", f2(i.LoadGenCPUSecondsPerSecond), f2(rl.LoadGenCPUSecondsPerSecond), "")
		row("machine busy cores", f2(i.MachineBusyCores), f2(rl.MachineBusyCores), "")
		fmt.Fprintln(w)
	}
	j := r.Joins
	fmt.Fprintf(w, "joins: %d of %d succeeded", j.Succeeded, j.Attempted)
	if j.Measured > 0 {
		fmt.Fprintf(w, "; join time (socket open to first remote keyframe) p50 %.0f ms, p95 %.0f ms, max %.0f ms over %d", j.P50ms, j.P95ms, j.MaxMs, j.Measured)
	}
	fmt.Fprintln(w)
	for _, e := range j.Errors {
		fmt.Fprintf(w, "  join error: %s\n", e)
	}
	if f := r.FirstFrame; f != nil {
		fmt.Fprintf(w, "time to first frame (subscribe answer to first whole keyframe, per video stream): %d of %d streams showed a frame", f.Shown, f.Streams)
		if f.Shown > 0 {
			fmt.Fprintf(w, "; p50 %.0f ms, p95 %.0f ms, max %.0f ms", f.P50ms, f.P95ms, f.MaxMs)
		}
		fmt.Fprintf(w, "\npublishers got %d keyframe requests, ignored %d (%s model)\n", f.PLIs, f.IgnoredPLIs, c.Publisher)
		for _, m := range f.Missing {
			fmt.Fprintf(w, "  no frame: %s\n", m)
		}
	}
	if ch := r.Churn; ch != nil {
		fmt.Fprintf(w, "churn: %.0f s, %d leaves + %d drops, %d stays without remote video, iopd CPU %.2f s/s\n", ch.Seconds, ch.Leaves, ch.Drops, ch.NoVideo, ch.CPUSecondsPerSecond)
		for _, p := range ch.Problems {
			fmt.Fprintf(w, "  server said: %s\n", p)
		}
	}
	s := r.Server
	fmt.Fprintf(w, "iopd            %12s %12s %12s\n", "before", "loaded", "after")
	fmt.Fprintf(w, "  goroutines    %12d %12d %12d   (%.1f per participant)\n", s.Before.Goroutines, s.Loaded.Goroutines, s.After.Goroutines, s.GoroutinesPerParticipant)
	fmt.Fprintf(w, "  RSS MB        %12.1f %12.1f %12.1f   (%.2f per participant)\n", s.Before.RSSMB, s.Loaded.RSSMB, s.After.RSSMB, s.RSSPerParticipantMB)
	fmt.Fprintf(w, "  heap alloc MB %12.1f %12.1f %12.1f   (%.2f per participant)\n", s.Before.HeapAllocMB, s.Loaded.HeapAllocMB, s.After.HeapAllocMB, s.HeapPerParticipantMB)
	fmt.Fprintf(w, "  participants  %12d %12d %12d\n", s.Before.Participants, s.Loaded.Participants, s.After.Participants)
	fmt.Fprintf(w, "  sockets       %12d %12d %12d\n", s.Before.Sockets, s.Loaded.Sockets, s.After.Sockets)
	if s.After.AfterGC {
		fmt.Fprintln(w, "  (after: read once iopd had collected garbage twice after everyone left)")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }
func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }
func lat(q Quantiles) string {
	return fmt.Sprintf("%.2f/%.2f/%.2f", q.P50, q.P99, q.P999)
}

func numCPU() int { return runtime.NumCPU() }

func machine() Machine {
	m := Machine{CPUs: numCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}
