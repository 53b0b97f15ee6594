package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is the iopd under load: one this tool started, or one it was
// pointed at on loopback.
type server struct {
	url    string
	pid    int // 0 when unknown: CPU and memory then come from /metrics
	secret string

	cmd     *exec.Cmd // when spawned
	done    chan struct{}
	tmp     string // temporary directory of a spawned server
	logPath string // its stderr (JSON logs)
	http    *http.Client
}

// spawnServer starts iopd on loopback with a fresh signing secret and the
// embedded Redis (or redisURL): bin is its binary, or empty to build one
// with the go tool into a temporary directory.
func spawnServer(ctx context.Context, bin, redisURL string, log io.Writer) (*server, error) {
	tmp, err := os.MkdirTemp("", "iopload-")
	if err != nil {
		return nil, err
	}
	s := &server{tmp: tmp, http: &http.Client{Timeout: 5 * time.Second}, done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			s.stop()
		}
	}()
	if bin == "" {
		bin = filepath.Join(tmp, "iopd")
		fmt.Fprintln(log, "building iopd (go build iop/cmd/iopd) ...")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "iop/cmd/iopd")
		if out, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build iopd (run from the module, or pass -iopd): %w\n%s", err, out)
		}
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	s.secret = hex.EncodeToString(secret)

	cmd := exec.Command(bin)
	// Should this process die without stopping it, iopd is told to drain.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IOP_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env,
		"IOP_HTTP_ADDR=127.0.0.1:0",
		"IOP_UDP_HOST=127.0.0.1",
		"IOP_UDP_PORT=0",
		"IOP_JWT_SECRET="+s.secret,
		"IOP_REDIS_URL="+redisURL,
		// Every synthetic participant comes from this one address: lift
		// the per-address limits meant for strangers.
		"IOP_JOIN_RATE=100000", "IOP_JOIN_BURST=100000", "IOP_UNJOINED_PER_ADDR=100000",
		"IOP_HTTP_CONNS_PER_ADDR=100000",
		// A load test measures what the node carries: no cap on people.
		"IOP_MAX_PARTICIPANTS=100000",
	)
	s.logPath = filepath.Join(tmp, "iopd.log")
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd.Stderr = logFile
	// iopd prints "iopd is serving on URL" once it serves.
	serving := newLineWatch("iopd is serving on ")
	cmd.Stdout = serving
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start iopd: %w", err)
	}
	s.cmd, s.pid = cmd, cmd.Process.Pid
	go func() { _ = cmd.Wait(); close(s.done) }()
	select {
	case s.url = <-serving.found:
	case <-s.done:
		return nil, fmt.Errorf("iopd exited on start: %s", s.logTail())
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("iopd did not serve within 60 s: %s", s.logTail())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := s.waitReady(ctx, 20*time.Second); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// attachServer uses an iopd that is already running at base, which must be
// a loopback address: latency is measured with one clock, and CPU and
// memory are read from this machine.
func attachServer(ctx context.Context, base string, pid int, secret string) (*server, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("-url %q: want http://127.0.0.1:PORT", base)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("-url %q: iopload measures on loopback only (one clock for latency, /proc for CPU)", base)
	}
	if len(secret) < 32 {
		return nil, errors.New("-url needs -secret (or IOP_JWT_SECRET): the server's HS256 secret, at least 32 bytes")
	}
	s := &server{url: strings.TrimRight(base, "/"), pid: pid, secret: secret, http: &http.Client{Timeout: 5 * time.Second}}
	if pid > 0 {
		if _, err := procCPU(pid); err != nil {
			return nil, fmt.Errorf("-pid %d: %w", pid, err)
		}
	}
	if err := s.waitReady(ctx, 10*time.Second); err != nil {
		return nil, err
	}
	return s, nil
}

// waitReady polls /readyz every 100 ms until it answers 200.
func (s *server) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/readyz", nil)
		resp, err := s.http.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("iopd at %s not ready within %s: %s", s.url, timeout, last)
}

// stop ends a spawned iopd: SIGTERM to its PID (it drains), then SIGKILL if
// it has not exited within 20 seconds. The temporary directory goes too.
func (s *server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	if s.tmp != "" {
		_ = os.RemoveAll(s.tmp)
	}
}

// log returns what a spawned iopd logged so far.
func (s *server) log() string {
	if s.logPath == "" {
		return ""
	}
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

func (s *server) logTail() string {
	l := s.log()
	return l[max(0, len(l)-2000):]
}

// lineWatch is a child's standard output: it hands over the rest of the
// first line that starts with prefix and discards everything else.
type lineWatch struct {
	prefix string
	found  chan string // receives once

	mu   sync.Mutex
	buf  []byte
	done bool
}

func newLineWatch(prefix string) *lineWatch {
	return &lineWatch{prefix: prefix, found: make(chan string, 1)}
}

func (w *lineWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		if rest, ok := strings.CutPrefix(line, w.prefix); ok {
			w.found <- strings.TrimSpace(rest)
			w.done, w.buf = true, nil
			break
		}
	}
	if len(w.buf) > 4096 { // a line that long is not the one
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

// metrics is what one scrape of /metrics says (unlabelled samples only).
type metrics map[string]float64

func (s *server) scrape(ctx context.Context) (metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape /metrics: %s", resp.Status)
	}
	m := metrics{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.ContainsRune(name, '{') {
			continue
		}
		if v, err := strconv.ParseFloat(strings.Fields(value)[0], 64); err == nil {
			m[name] = v
		}
	}
	return m, sc.Err()
}

// usage is a process's resources at one moment.
type usage struct {
	cpu float64 // CPU seconds used since start (user + system)
	rss float64 // resident bytes
}

// usage reads the server's CPU time and RSS from /proc, or from /metrics
// (process collector) when its PID is unknown.
func (s *server) usage(ctx context.Context) (usage, error) {
	if s.pid > 0 {
		cpu, err := procCPU(s.pid)
		if err != nil {
			return usage{}, err
		}
		return usage{cpu: cpu, rss: procRSS(s.pid)}, nil
	}
	m, err := s.scrape(ctx)
	if err != nil {
		return usage{}, err
	}
	return usage{cpu: m["process_cpu_seconds_total"], rss: m["process_resident_memory_bytes"]}, nil
}

// procCPU returns the CPU seconds (utime + stime) process pid has used.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name in parentheses may contain spaces: count fields
	// after the last ')'. utime and stime are fields 14 and 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected /proc stat format")
	}
	return float64(ut+st) / clockTicks(), nil
}

// procRSS returns the resident set of process pid in bytes, 0 if unknown.
func procRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// clockTicks is the kernel's USER_HZ, from the auxiliary vector (AT_CLKTCK).
func clockTicks() float64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err == nil {
		for i := 0; i+16 <= len(b); i += 16 {
			if binary.NativeEndian.Uint64(b[i:]) == 17 { // AT_CLKTCK
				if v := binary.NativeEndian.Uint64(b[i+8:]); v > 0 {
					return float64(v)
				}
			}
		}
	}
	return 100
}

// machineCPU returns the busy and total CPU seconds of the whole machine
// since boot (all cores), from /proc/stat.
func machineCPU() (busy, total float64) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0
	}
	var idle float64
	for i, v := range fields[1:] {
		if i >= 8 { // guest time is already counted in user
			break
		}
		n, _ := strconv.ParseFloat(v, 64)
		total += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	hz := clockTicks()
	return (total - idle) / hz, total / hz
}
