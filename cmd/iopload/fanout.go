package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

// switchGuard is how long a forwarder's participants send before its
// window opens again, after the other forwarder's window.
const switchGuard = 300 * time.Millisecond

// fanout is W1, W3 and any custom shape: everyone joins iopd and media
// flows; the same participants join the bare relay; then iopd and the
// relay carry the traffic in turn, in alternating windows, so that noise
// from other processes on the machine falls on both alike.
func (r *runner) fanout(ctx context.Context, rep *Report) error {
	c := r.cfg
	slots := r.slots()
	iopd := &path{name: "iopd", layers: c.Layers, layer: c.subscribedLayer(), win: &windows{}, slots: slots, present: make([]bool, len(slots))}
	iopd.rxs = make([]*receiver, len(slots))
	for i := range iopd.rxs {
		iopd.rxs[i] = newReceiver(iopd.win)
	}
	peers := r.joinAll(ctx, slots, iopd.rxs, rep)
	defer leaveAll(peers)
	for i, p := range peers {
		if p != nil {
			iopd.present[i] = true
			iopd.srcs = append(iopd.srcs, p.src)
		}
	}
	if len(iopd.srcs) == 0 {
		return fmt.Errorf("no participant could join: %v", rep.Joins.Errors)
	}
	iopd.cpu = func() (float64, error) {
		u, err := r.srv.usage(ctx)
		return u.cpu, err
	}
	iopd.in = func() (float64, bool) {
		m, err := r.srv.scrape(ctx)
		return m["iop_rtp_packets_received_total"], err == nil
	}
	r.waitFlow(ctx, "iopd", slots, iopd.present, iopd.rxs, c.FlowTimeout)
	paths := []*path{iopd}
	if !c.NoRelay {
		iopd.pause(true)
		rel, err := r.relayPath(ctx, slots)
		if err != nil {
			return err
		}
		defer rel.close()
		paths = append(paths, rel)
	}
	loaded := func() {
		if s, err := r.snapshot(ctx); err == nil {
			rep.Server.Loaded = s
		}
	}
	if err := r.interleave(ctx, paths, loaded); err != nil {
		return err
	}
	rep.IOPD = iopd.report()
	if len(paths) > 1 {
		rep.Relay = paths[1].report()
	}
	var jt []time.Duration
	for i, s := range slots {
		if iopd.present[i] && s.seat > 0 {
			if d, ok := iopd.rxs[i].joinTime(); ok {
				jt = append(jt, d)
			}
		}
	}
	rep.Joins.setTimes(jt)
	rep.FirstFrame = firstFrames(slots, peers, iopd.rxs)
	for _, p := range peers {
		if p != nil {
			if pr := p.problem(); pr != "" {
				rep.note("participant %d: the server said %s", p.idx, pr)
			}
		}
	}
	r.cfg.logf("leaving")
	return nil
}

// interleave measures each path for the run's duration in turns of
// -slice: only the measured path's participants send. loaded runs once,
// at the end of the first path's first window.
func (r *runner) interleave(ctx context.Context, paths []*path, loaded func()) error {
	c := r.cfg
	slice := c.Duration
	if len(paths) > 1 {
		slice = min(c.Slice, c.Duration)
	}
	r.cfg.logf("measuring %s per forwarder, in windows of %s", c.Duration, slice)
	warm := map[*path]bool{}
	for done := time.Duration(0); done < c.Duration && ctx.Err() == nil; done += slice {
		for _, p := range paths {
			for _, o := range paths {
				o.pause(o != p)
			}
			guard := switchGuard
			if !warm[p] {
				guard, warm[p] = max(c.Warmup, switchGuard), true
			}
			sleep(ctx, guard)
			if err := p.window(ctx, min(slice, c.Duration-done)); err != nil {
				return err
			}
			if loaded != nil {
				loaded()
				loaded = nil
			}
		}
	}
	for _, p := range paths {
		p.pause(true)
	}
	sleep(ctx, switchGuard) // what was sent in the last window arrives
	return nil
}

// path is one forwarder under measurement: its participants, their
// measured windows, and the forwarder's CPU.
type path struct {
	name    string
	layers  int // simulcast layers the publishers send
	layer   int // the video layer subscribers receive
	win     *windows
	slots   []slot
	present []bool
	srcs    []*source
	rxs     []*receiver
	cpu     func() (float64, error) // the forwarder's CPU seconds so far
	in      func() (float64, bool)  // packets the forwarder read so far, if it says
	close   func()

	// sums over the windows
	seconds, cpuSec, selfSec, busySec, totalSec, inPkts float64
	sent                                                int64
}

func (p *path) pause(on bool) {
	for _, s := range p.srcs {
		s.paused.Store(on)
	}
}

func (p *path) sentSoFar() (n int64) {
	for _, s := range p.srcs {
		n += s.sent.Load()
	}
	return n
}

// window measures one window of d: the forwarder's CPU, this process's and
// the machine's, and what the sources sent.
func (p *path) window(ctx context.Context, d time.Duration) error {
	var in0 float64
	inOK := false
	if p.in != nil {
		in0, inOK = p.in()
	}
	c0, err := p.cpu()
	if err != nil {
		return fmt.Errorf("read %s CPU: %w", p.name, err)
	}
	self0, _ := procCPU(os.Getpid())
	busy0, total0 := machineCPU()
	s0 := p.sentSoFar()
	t0 := time.Now()
	p.win.open(t0)
	sleep(ctx, d)
	t1 := time.Now()
	p.win.close(t1)
	s1 := p.sentSoFar()
	c1, err := p.cpu()
	if err != nil {
		return fmt.Errorf("read %s CPU: %w", p.name, err)
	}
	self1, _ := procCPU(os.Getpid())
	busy1, total1 := machineCPU()
	p.seconds += t1.Sub(t0).Seconds()
	p.cpuSec += c1 - c0
	p.selfSec += self1 - self0
	p.busySec += busy1 - busy0
	p.totalSec += total1 - total0
	p.sent += s1 - s0
	if inOK {
		if in1, ok := p.in(); ok {
			p.inPkts += in1 - in0
		} else {
			p.in = nil
		}
	}
	return nil
}

// report sums the windows once they are over.
func (p *path) report() *PathReport {
	var w windowStats
	for _, rx := range p.rxs {
		w.add(rx)
	}
	el := max(p.seconds, 1e-9)
	out := &PathReport{
		WindowSeconds:          p.seconds,
		CPUSecondsPerSecond:    p.cpuSec / el,
		SentPacketsPerSecond:   float64(p.sent) / el,
		ForwardedPacketsPerSec: float64(w.packets) / el,
		ForwardedMbps:          float64(w.bytes) * 8 / el / 1e6,
		LossPercent:            w.lossPercent(),
		Duplicates:             w.dups,
		Latency: Quantiles{
			P50:  ms(w.lat.quantile(0.50)),
			P99:  ms(w.lat.quantile(0.99)),
			P999: ms(w.lat.quantile(0.999)),
		},
		LoadGenCPUSecondsPerSecond: p.selfSec / el,
	}
	if p.in != nil {
		out.ServerReceivedPerSec = p.inPkts / el
	}
	if p.layers > 1 {
		for _, n := range w.videoByLayer {
			out.VideoByLayer = append(out.VideoByLayer, float64(n)/el)
		}
	}
	if w.packets > 0 {
		out.CPUMicrosPerPacket = p.cpuSec / float64(w.packets) * 1e6
	}
	if p.totalSec > 0 {
		out.MachineBusyCores = p.busySec / p.totalSec * float64(numCPU())
	}
	for _, ok := range p.present {
		if ok {
			out.Participants++
		}
	}
	out.Streams, out.StreamsReceiving, out.Missing = coverage(p.slots, p.present, p.rxs, p.layer)
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// snapshot reads the server's goroutines, memory and what it carries.
func (r *runner) snapshot(ctx context.Context) (snapshot, error) {
	m, err := r.srv.scrape(ctx)
	if err != nil {
		return snapshot{}, err
	}
	u, err := r.srv.usage(ctx)
	if err != nil {
		return snapshot{}, err
	}
	return snapshot{
		Goroutines:      int(m["go_goroutines"]),
		RSSMB:           u.rss / 1e6,
		HeapAllocMB:     m["go_memstats_heap_alloc_bytes"] / 1e6,
		gcs:             m["go_gc_duration_seconds_count"],
		Participants:    int(m["iop_participants"]),
		Sockets:         int(m["iop_sockets"]),
		PeerConnections: int(m["iop_peer_connections"]),
	}, nil
}

// settle waits, up to -settle, until the server holds no participant,
// socket or PeerConnection and its goroutines are back near before, or
// have not changed for a second (pooled Redis connections stay). With
// -wait-gc it then waits for two more garbage collections in the server
// (the runtime forces one every two minutes): the first frees what the
// participants left, the second empties the sync.Pools' victim caches, so
// that the heap it reports is what is still referenced.
func (r *runner) settle(ctx context.Context, before snapshot) snapshot {
	deadline := time.Now().Add(r.cfg.Settle)
	var s snapshot
	last, same := -1, 0
	for {
		// A context of its own: the run's may be cancelled (Ctrl-C), and
		// the report still says where the server ended up.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var err error
		s, err = r.snapshot(sctx)
		cancel()
		if s.Goroutines == last {
			same++
		} else {
			last, same = s.Goroutines, 0
		}
		if err == nil && s.Participants == 0 && s.Sockets == 0 && s.PeerConnections == 0 && (s.Goroutines <= before.Goroutines+2 || same >= 4) {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !r.cfg.WaitGC || ctx.Err() != nil {
		return s
	}
	r.cfg.logf("waiting for two garbage collections in iopd (the runtime forces one every 2 minutes; at most 260 s)")
	gcDeadline := time.Now().Add(260 * time.Second)
	for time.Now().Before(gcDeadline) && ctx.Err() == nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := r.srv.scrape(sctx)
		cancel()
		if err == nil && s.gcs > 0 && m["go_gc_duration_seconds_count"] >= s.gcs+2 {
			if after, err := r.snapshot(ctx); err == nil {
				after.AfterGC = true
				return after
			}
			break
		}
		sleep(ctx, time.Second)
	}
	return s
}

// relayPath starts the bare relay and the same participants on it, paused.
func (r *runner) relayPath(ctx context.Context, slots []slot) (*path, error) {
	rel, err := startRelay(ctx, r.cfg.relayExe)
	if err != nil {
		return nil, err
	}
	p := &path{
		name: "relay", layers: r.cfg.Layers, layer: r.cfg.subscribedLayer(), win: &windows{}, slots: slots, present: make([]bool, len(slots)),
		rxs: make([]*receiver, len(slots)),
		cpu: func() (float64, error) { return procCPU(rel.pid()) },
	}
	peers := make([]*relayPeer, len(slots))
	p.close = func() {
		for _, x := range peers {
			if x != nil {
				x.close()
			}
		}
		rel.stop()
	}
	for i, s := range slots {
		p.rxs[i] = newReceiver(p.win)
		x, err := joinRelay(rel.addr, uint32(s.room), s.idx, r.cfg.traffic(), r.cfg.subscribedLayer(), p.rxs[i])
		if err != nil {
			p.close()
			return nil, fmt.Errorf("relay participant %d: %w", i, err)
		}
		peers[i], p.present[i] = x, true
		p.srcs = append(p.srcs, x.src)
	}
	r.waitFlow(ctx, "relay", slots, p.present, p.rxs, 10*time.Second)
	p.pause(true)
	return p, nil
}
