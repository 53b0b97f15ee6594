// Command iopload is iopd's load generator and benchmark. It drives a real
// iopd over the real protocol with synthetic pion participants (VP8 frames of
// realistic sizes at 30 fps, keyframes when asked as Chrome gives them, Opus every 20 ms, each
// packet stamped with its send time and a sequence number), then drives a
// bare UDP relay with the same traffic, and reports both side by side: CPU
// per forwarded packet and its ratio to the relay's, throughput, loss,
// one-way latency, join time, and the server's memory and goroutines per
// participant.
//
//	iopload -spawn -workload W1            one group of 15 at 1.5 Mbps each
//	iopload -spawn -workload W3            a join storm of 15 in one second
//	iopload -spawn -workload W4            join/leave churn: does memory return?
//	iopload -url http://127.0.0.1:8080 -secret ... -pid 1234 -rooms 2 -per-room 8
//
// docs/performance.md explains the workloads and the figures.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"iop/signaling/token"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == relayChildFlag {
		if err := runRelayChild(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "iopload relay:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cli(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "iopload:", err)
		os.Exit(1)
	}
}

// config is one run's configuration.
type config struct {
	Workload string

	URL      string
	PID      int
	Spawn    bool
	IOPD     string
	Secret   string
	Audience string
	RedisURL string

	Rooms, PerRoom   int
	BitrateKbps      int
	Layers           int
	Quality          string
	RembKbps         int
	FPS              int
	KeyframeInterval time.Duration
	Publisher        string
	JoinRate         float64
	Duration         time.Duration
	Warmup           time.Duration
	Slice            time.Duration
	FlowTimeout      time.Duration
	Settle           time.Duration
	ChurnStay        time.Duration
	ChurnCrash       float64
	NoRelay          bool
	WaitGC           bool
	Ramp             bool
	MaxRooms         int
	JSON             bool

	// relayExe is the binary started as the relay child (this one).
	relayExe string
	// progress receives one line per step; nil discards them.
	progress io.Writer
	// started is when the run started, for the progress lines.
	started time.Time
}

// workloads are the presets of -workload; flags given explicitly win.
var workloads = map[string]func(*config){
	// W1: one group of 15, each publishing 1.5 Mbps video and audio to everyone.
	"W1": func(c *config) {
		c.Rooms, c.PerRoom, c.BitrateKbps, c.JoinRate, c.Duration = 1, 15, 1500, 5, 20*time.Second
	},
	// W2: groups of 15 publishing three simulcast layers, subscribers on the
	// middle one (a grid), one more group each step until a target fails.
	"W2": func(c *config) {
		c.Rooms, c.PerRoom, c.BitrateKbps, c.JoinRate, c.Duration = 1, 15, 1500, 10, 10*time.Second
		c.Layers, c.Ramp = 3, true
	},
	// W3: a join storm: 15 participants in one second.
	"W3": func(c *config) {
		c.Rooms, c.PerRoom, c.BitrateKbps, c.JoinRate, c.Duration = 1, 15, 1500, 15, 5*time.Second
	},
	// W4: join/leave churn; memory and goroutines must return to the baseline.
	"W4": func(c *config) {
		c.Rooms, c.PerRoom, c.BitrateKbps, c.JoinRate, c.Duration = 2, 8, 300, 5, 3*time.Minute
		c.WaitGC = true
	},
}

func cli(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parseArgs(args, getenv, stderr)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary for the relay child: %w", err)
	}
	c.relayExe = exe
	c.progress = stderr
	c.started = time.Now()
	command := "iopload " + strings.Join(redactArgs(args), " ")
	if c.Ramp {
		rr, err := ramp(ctx, c)
		rr.Command = command
		for _, s := range rr.Steps {
			s.Command = fmt.Sprintf("%s (step of %d groups)", command, s.Config.Rooms)
		}
		if c.JSON {
			if werr := rr.writeJSON(stdout); werr != nil {
				return werr
			}
		} else {
			rr.writeText(stdout)
		}
		return err
	}
	rep, err := run(ctx, c)
	if rep != nil {
		rep.Command = command
		if c.JSON {
			if werr := rep.writeJSON(stdout); werr != nil {
				return werr
			}
		} else {
			rep.writeText(stdout)
		}
	}
	return err
}

// parseArgs reads the flags over the -workload preset over the defaults.
func parseArgs(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("iopload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Workload, "workload", "", "preset: W1 (group of 15 at 1.5 Mbps), W2 (groups of 15 with simulcast, added until a target fails), W3 (join storm of 15 in 1 s), W4 (join/leave churn); other flags override it")
	fs.StringVar(&c.URL, "url", "", "base URL of a running iopd on loopback, e.g. http://127.0.0.1:8080")
	fs.IntVar(&c.PID, "pid", 0, "with -url: the iopd's process id, to read its CPU and RSS from /proc (default: from its /metrics)")
	fs.BoolVar(&c.Spawn, "spawn", false, "start iopd on loopback with a generated secret and stop it at the end")
	fs.StringVar(&c.IOPD, "iopd", "", "with -spawn: the iopd binary (default: go build iop/cmd/iopd into a temporary directory)")
	fs.StringVar(&c.Secret, "secret", getenv("IOP_JWT_SECRET"), "with -url: the server's HS256 secret, to mint tokens [$IOP_JWT_SECRET]")
	fs.StringVar(&c.Audience, "audience", cmp.Or(getenv("IOP_JWT_AUDIENCE"), token.DefaultAudience), "with -url: the audience the server expects in tokens [$IOP_JWT_AUDIENCE]")
	fs.StringVar(&c.RedisURL, "redis-url", "", "with -spawn: IOP_REDIS_URL for iopd (default: its embedded Redis, whose data lives in iopd's heap)")
	fs.IntVar(&c.Rooms, "rooms", 1, "rooms (groups)")
	fs.IntVar(&c.PerRoom, "per-room", 15, "participants per room; the first of each is a therapist who admits everyone")
	fs.IntVar(&c.BitrateKbps, "bitrate", 1500, "video bitrate of each publisher, kbps (with -layers 3: of the top layer; the others get a tenth and a third)")
	fs.IntVar(&c.Layers, "layers", 1, "simulcast layers each publisher sends: 1, or 3 (rids q, h, f)")
	fs.StringVar(&c.Quality, "quality", "", "with -layers 3: the layer every subscriber asks of every publisher (low, medium, high; default: the server's choice, medium for a grid tile)")
	fs.IntVar(&c.RembKbps, "remb-kbps", 0, "every subscriber reports this downlink bandwidth (REMB), as on a weak home connection; with -layers 3 subscribers are then expected to get -quality, or else the low layer")
	fs.IntVar(&c.FPS, "fps", 30, "video frames per second")
	fs.DurationVar(&c.KeyframeInterval, "keyframe-interval", 0, "a periodic keyframe this often, 0 for none (Chrome's VP8 keys every 3,000 frames); keyframes also come when the server asks")
	fs.StringVar(&c.Publisher, "publisher", publisherChrome, "how publishers answer the server's keyframe requests: chrome (ignore one within 500 ms of the last keyframe, else key every layer) or eager (key the layer named, every time)")
	fs.Float64Var(&c.JoinRate, "join-rate", 5, "joins per second")
	fs.DurationVar(&c.Duration, "duration", 20*time.Second, "measured time of each forwarder (W4: how long the churn lasts)")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "steady time before measuring, once media flows everywhere")
	fs.DurationVar(&c.Slice, "slice", 2*time.Second, "iopd and the relay are measured in alternating windows of this length, so that noise from other processes falls on both alike")
	fs.DurationVar(&c.FlowTimeout, "flow-timeout", 30*time.Second, "how long to wait for media to reach every subscriber before measuring anyway")
	fs.DurationVar(&c.Settle, "settle", 20*time.Second, "after everyone left: how long to wait for iopd's goroutines to return to the baseline")
	fs.DurationVar(&c.ChurnStay, "churn-stay", 5*time.Second, "W4: mean time a client stays before leaving and joining again")
	fs.Float64Var(&c.ChurnCrash, "churn-crash", 0.2, "W4: share of leaves that drop the connection without a word")
	fs.BoolVar(&c.WaitGC, "wait-gc", false, "after everyone left, wait for two garbage collections in iopd (up to 260 s) before reading its heap (default true for W4)")
	fs.BoolVar(&c.NoRelay, "no-relay", false, "skip the bare-relay baseline")
	fs.BoolVar(&c.Ramp, "ramp", false, "run with -rooms groups, then one more each step, until loss reaches 0.5% or latency p99 20 ms (default true for W2)")
	fs.IntVar(&c.MaxRooms, "max-rooms", 12, "with -ramp: the most groups to try")
	fs.BoolVar(&c.JSON, "json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "iopload: load generator and benchmark for iopd, with a bare-relay baseline in the same run")
		fmt.Fprintln(fs.Output(), "usage: iopload -spawn [-workload W1|W2|W3|W4] [flags]   or   iopload -url URL -secret S [-pid PID] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if c.Workload != "" {
		c.Workload = strings.ToUpper(c.Workload)
		preset, ok := workloads[c.Workload]
		if !ok {
			return nil, fmt.Errorf("-workload %q: want W1, W2, W3 or W4", c.Workload)
		}
		preset(c)
		// Flags given explicitly win over the preset: read them again.
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		c.Workload = strings.ToUpper(c.Workload)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *config) validate() error {
	switch {
	case c.Spawn == (c.URL != ""):
		return errors.New("give -spawn (start iopd here) or -url (a running iopd), one of them")
	case c.Rooms < 1 || c.Rooms > 100:
		return fmt.Errorf("-rooms %d: want 1 to 100", c.Rooms)
	case c.PerRoom < 2 || c.PerRoom > 64:
		return fmt.Errorf("-per-room %d: want 2 to 64 (one therapist and at least one client)", c.PerRoom)
	case c.BitrateKbps < 10 || c.BitrateKbps > 20000:
		return fmt.Errorf("-bitrate %d: want 10 to 20000 kbps", c.BitrateKbps)
	case c.FPS < 1 || c.FPS > 120:
		return fmt.Errorf("-fps %d: want 1 to 120", c.FPS)
	case c.JoinRate <= 0 || c.JoinRate > 1000:
		return fmt.Errorf("-join-rate %g: want more than 0, at most 1000 per second", c.JoinRate)
	case c.Duration <= 0 || c.Slice < 100*time.Millisecond || c.Warmup < 0 || c.FlowTimeout <= 0 || c.Settle < 0:
		return errors.New("-duration and -flow-timeout must be positive, -slice at least 100ms, -warmup and -settle not negative")
	case c.Layers != 1 && c.Layers != maxLayers:
		return fmt.Errorf("-layers %d: want 1 or %d", c.Layers, maxLayers)
	case c.Quality != "" && (c.Layers == 1 || !slices.Contains(qualities, c.Quality)):
		return errors.New("-quality needs -layers 3 and is low, medium or high")
	case c.RembKbps < 0 || c.RembKbps > 1_000_000:
		return fmt.Errorf("-remb-kbps %d: want 0 (off) to 1000000", c.RembKbps)
	case c.KeyframeInterval != 0 && c.KeyframeInterval < 100*time.Millisecond:
		return errors.New("-keyframe-interval: 0 (none) or at least 100ms")
	case c.Publisher != "" && c.Publisher != publisherChrome && c.Publisher != publisherEager:
		return fmt.Errorf("-publisher %q: want chrome or eager", c.Publisher)
	case c.ChurnStay < 100*time.Millisecond || c.ChurnCrash < 0 || c.ChurnCrash > 1:
		return errors.New("-churn-stay at least 100ms, -churn-crash between 0 and 1")
	case c.Ramp && (c.MaxRooms < c.Rooms || c.MaxRooms > 100 || c.Workload == "W4"):
		return fmt.Errorf("-ramp: -max-rooms %d must be between -rooms %d and 100, and churn (W4) does not ramp", c.MaxRooms, c.Rooms)
	case c.URL != "" && (c.IOPD != "" || c.RedisURL != ""):
		return errors.New("-iopd and -redis-url are for -spawn")
	}
	return nil
}

func (c *config) traffic() traffic {
	t := defaultTraffic()
	t.VideoKbps, t.Layers, t.FPS, t.KeyframeInterval = c.BitrateKbps, c.Layers, c.FPS, c.KeyframeInterval
	if c.Publisher != "" {
		t.Publisher = c.Publisher
	}
	return t
}

// qualities are the layers a subscriber can ask for, lowest first.
var qualities = []string{"low", "medium", "high"}

// subscribedLayer is the video layer every subscriber is expected to
// receive: the one it asks for, else the low one when it reports a weak
// connection, else the server's default for a grid tile (medium).
func (c *config) subscribedLayer() int {
	if c.Layers <= 1 {
		return 0
	}
	for i, q := range qualities {
		if q == c.Quality {
			return i
		}
	}
	if c.RembKbps > 0 {
		return 0
	}
	return 1
}

// redactArgs hides the value of -secret, so that reports can be shared.
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	hide := false
	for i, a := range args {
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case hide:
			out[i], hide = "REDACTED", false
		case strings.HasPrefix(a, "-") && name == "secret" && hasValue:
			out[i] = a[:strings.Index(a, "=")+1] + "REDACTED"
		case strings.HasPrefix(a, "-") && name == "secret":
			out[i], hide = a, true
		default:
			out[i] = a
		}
	}
	return out
}

// progressOrDiscard is where progress lines go.
func progressOrDiscard(c *config) io.Writer {
	if c.progress == nil {
		return io.Discard
	}
	return c.progress
}

func (c *config) logf(format string, args ...any) {
	if c.progress != nil {
		fmt.Fprintf(c.progress, "iopload %5.1fs: "+format+"\n", append([]any{time.Since(c.started).Seconds()}, args...)...)
	}
}
