package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"iop/rooms"
	"iop/signaling/token"
)

// runner drives one run: the server, its participants and the relay.
type runner struct {
	cfg    *config
	srv    *server
	api    *webrtc.API
	minter *token.Minter
	runID  string
}

// slot is one participant's place: which room, which seat in it.
type slot struct {
	room, seat int
	idx        uint32 // publisher index in the run, carried in every stamp
}

func (s slot) therapist() bool { return s.seat == 0 }

// run starts or attaches to iopd, runs the workload against it and the
// relay baseline with the same traffic, and returns the report. A report
// is returned with whatever was measured even when err is set.
func run(ctx context.Context, c *config) (*Report, error) {
	c.started = time.Now()
	rep := newReport(c)
	rep.embeddedRedis = c.Spawn && c.RedisURL == ""
	var srv *server
	var err error
	if c.Spawn {
		srv, err = spawnServer(ctx, c.IOPD, c.RedisURL, progressOrDiscard(c))
	} else {
		srv, err = attachServer(ctx, c.URL, c.PID, c.Secret)
	}
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	api, err := newRTCAPI()
	if err != nil {
		return nil, err
	}
	r := &runner{
		cfg: c, srv: srv, api: api,
		minter: token.NewMinter(token.Config{Secret: []byte(srv.secret), Audience: c.Audience}),
		runID:  randomHex(3),
	}
	if rep.Server.Before, err = r.snapshot(ctx); err != nil {
		return nil, err
	}
	c.logf("iopd at %s (pid %d): %d goroutines, %.1f MB RSS before the run", srv.url, srv.pid, rep.Server.Before.Goroutines, rep.Server.Before.RSSMB)
	if c.Workload == "W4" {
		err = r.churn(ctx, rep)
	} else {
		err = r.fanout(ctx, rep)
	}
	c.logf("everyone left; waiting for iopd to settle")
	rep.Server.After = r.settle(ctx, rep.Server.Before)
	c.logf("after everyone left: %d goroutines, %.1f MB RSS, %d participants", rep.Server.After.Goroutines, rep.Server.After.RSSMB, rep.Server.After.Participants)
	if srv.cmd != nil {
		rep.raceReports = countRaces(srv.log())
	}
	rep.finish()
	return rep, err
}

// slots lists every participant: each room's therapist first, then the
// clients round-robin over the rooms.
func (r *runner) slots() []slot {
	var out []slot
	for seat := range r.cfg.PerRoom {
		for room := range r.cfg.Rooms {
			out = append(out, slot{room: room, seat: seat, idx: uint32(len(out))})
		}
	}
	return out
}

func (r *runner) roomID(room int) string { return fmt.Sprintf("load-%s-%d", r.runID, room) }

// token mints a join token for a slot: a therapist for seat 0, else a client.
func (r *runner) token(s slot) (string, error) {
	role := rooms.RoleClient
	if s.therapist() {
		role = rooms.RoleTherapist
	}
	c := token.Claims{Name: fmt.Sprintf("Load %d-%d", s.room, s.seat), Role: role, Room: r.roomID(s.room), Program: "load"}
	c.Subject = fmt.Sprintf("load-%s-%d-%d", r.runID, s.room, s.seat)
	return r.minter.Mint(c, 2*time.Hour+r.cfg.Duration)
}

// join joins one slot's participant with a 30 s limit.
func (r *runner) join(ctx context.Context, s slot, rx *receiver) (*rtcPeer, error) {
	tok, err := r.token(s)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return joinRTC(ctx, r.api, r.srv.url, tok, s.idx, s.therapist(), r.cfg.traffic(), subscribing{Quality: r.cfg.Quality, RembKbps: r.cfg.RembKbps}, rx)
}

// joinAll joins every slot at the join rate, each join on its own
// goroutine so that a slow one does not hold back the schedule; it returns
// once all have joined or failed. Failed slots are nil.
func (r *runner) joinAll(ctx context.Context, slots []slot, rxs []*receiver, rep *Report) []*rtcPeer {
	r.cfg.logf("joining %d participants in %d room(s) at %g/s", len(slots), r.cfg.Rooms, r.cfg.JoinRate)
	peers := make([]*rtcPeer, len(slots))
	errs := make([]error, len(slots))
	every := time.Duration(float64(time.Second) / r.cfg.JoinRate)
	next := time.Now()
	var wg sync.WaitGroup
	for i, s := range slots {
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		next = next.Add(every)
		if ctx.Err() != nil {
			errs[i] = ctx.Err()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			peers[i], errs[i] = r.join(ctx, s, rxs[i])
		}()
	}
	wg.Wait()
	for _, err := range errs {
		rep.Joins.add(err)
	}
	return peers
}

// leaveAll makes every participant leave at once and waits until all have.
func leaveAll(peers []*rtcPeer) {
	var wg sync.WaitGroup
	for _, p := range peers {
		if p != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.leave(false)
			}()
		}
	}
	wg.Wait()
}

// coverage counts the (subscriber, publisher, kind) streams that should
// flow among the present participants, and those that delivered a packet:
// of video, a packet of the layer subscribers receive.
func coverage(slots []slot, present []bool, rxs []*receiver, layer int) (want, got int, missing []string) {
	for i, s := range slots {
		if !present[i] {
			continue
		}
		rec := rxs[i].received()
		for j, o := range slots {
			if j == i || !present[j] || o.room != s.room {
				continue
			}
			for _, video := range []bool{false, true} {
				want++
				k := streamKey{pub: o.idx, video: video}
				if video {
					k.layer = byte(layer)
				}
				if rec[k] > 0 {
					got++
				} else if len(missing) < 5 {
					kind := "audio"
					if video {
						kind = fmt.Sprintf("video layer %d", layer)
					}
					missing = append(missing, fmt.Sprintf("%d gets no %s from %d", s.idx, kind, o.idx))
				}
			}
		}
	}
	return want, got, missing
}

// waitFlow waits until every present participant receives audio and video
// from every other one in its room, or the timeout passes.
func (r *runner) waitFlow(ctx context.Context, what string, slots []slot, present []bool, rxs []*receiver, timeout time.Duration) {
	start := time.Now()
	for {
		want, got, missing := coverage(slots, present, rxs, r.cfg.subscribedLayer())
		if got == want {
			r.cfg.logf("%s: media flows on all %d streams after %.1f s", what, want, time.Since(start).Seconds())
			return
		}
		if time.Since(start) > timeout || ctx.Err() != nil {
			r.cfg.logf("%s: only %d of %d streams flow after %s (%v); measuring anyway", what, got, want, timeout, missing)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// firstFrames measures the time to first frame of every video stream
// among the participants who joined, per room.
func firstFrames(slots []slot, peers []*rtcPeer, rxs []*receiver) *FirstFrames {
	f := &FirstFrames{}
	var times []time.Duration
	for i, s := range slots {
		if peers[i] == nil {
			continue
		}
		f.PLIs += peers[i].src.plis.Load()
		f.IgnoredPLIs += peers[i].src.ignored.Load()
		for j, o := range slots {
			if j == i || peers[j] == nil || o.room != s.room {
				continue
			}
			f.Streams++
			if d, ok := rxs[i].firstFrame(peers[j].id, o.idx); ok {
				times = append(times, d)
			} else if len(f.Missing) < 5 {
				f.Missing = append(f.Missing, fmt.Sprintf("%d shows no frame of %d", s.idx, o.idx))
			}
		}
	}
	f.setTimes(times)
	return f
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

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

// churn is W4: therapists stay, clients join, stay a while, leave (some
// by dropping the connection) and join again, for the whole duration.
func (r *runner) churn(ctx context.Context, rep *Report) error {
	c := r.cfg
	slots := r.slots()
	win := &windows{} // never opened: churn measures joins and memory, not packets
	var therapists []slot
	var clients []slot
	for _, s := range slots {
		if s.therapist() {
			therapists = append(therapists, s)
		} else {
			clients = append(clients, s)
		}
	}
	trx := make([]*receiver, len(therapists))
	for i := range trx {
		trx[i] = newReceiver(win)
	}
	tpeers := r.joinAll(ctx, therapists, trx, rep)
	defer leaveAll(tpeers)
	for _, p := range tpeers {
		if p == nil {
			return fmt.Errorf("a therapist could not join: %v", rep.Joins.Errors)
		}
	}
	u0, err := r.srv.usage(ctx)
	if err != nil {
		return err
	}
	t0 := time.Now()
	end := t0.Add(c.Duration)
	ch := &Churn{}
	rep.Churn = ch
	var mu sync.Mutex // guards ch, rep.Joins and times
	var times []time.Duration

	// Sample the server every 10 s (more often in a short run) while
	// clients churn.
	sampleStop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(min(10*time.Second, max(c.Duration/4, time.Second)))
		defer tick.Stop()
		for {
			select {
			case <-sampleStop:
				return
			case <-tick.C:
				if s, err := r.snapshot(ctx); err == nil {
					mu.Lock()
					ch.Samples = append(ch.Samples, ChurnSample{Seconds: time.Since(t0).Seconds(), snapshot: s})
					mu.Unlock()
				}
			}
		}
	}()

	c.logf("churn: %d clients join, stay about %s, leave (%.0f%% by dropping) and rejoin, for %s", len(clients), c.ChurnStay, 100*c.ChurnCrash, c.Duration)
	var wg sync.WaitGroup
	for k, s := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sleep(ctx, time.Duration(float64(k)/c.JoinRate*float64(time.Second)))
			for ctx.Err() == nil && time.Now().Before(end) {
				rx := newReceiver(win)
				p, err := r.join(ctx, s, rx)
				mu.Lock()
				rep.Joins.add(err)
				mu.Unlock()
				if err != nil {
					sleep(ctx, time.Second)
					continue
				}
				stay := time.Duration(float64(c.ChurnStay) * (0.5 + mrand.Float64()))
				sleep(ctx, min(stay, time.Until(end)+time.Second))
				crash := mrand.Float64() < c.ChurnCrash
				d, ok := rx.joinTime()
				pr := p.problem()
				p.leave(crash)
				mu.Lock()
				if ok {
					times = append(times, d)
				} else {
					ch.NoVideo++
				}
				if crash {
					ch.Drops++
				} else {
					ch.Leaves++
				}
				if pr != "" && len(ch.Problems) < 5 {
					ch.Problems = append(ch.Problems, pr)
				}
				mu.Unlock()
				sleep(ctx, time.Duration(200+mrand.IntN(800))*time.Millisecond)
			}
		}()
	}
	wg.Wait()
	close(sampleStop)
	<-sampled
	el := time.Since(t0).Seconds()
	if u1, err := r.srv.usage(ctx); err == nil && el > 0 {
		ch.CPUSecondsPerSecond = (u1.cpu - u0.cpu) / el
	}
	ch.Seconds = el
	// Under load: the sample with the most goroutines.
	for _, s := range ch.Samples {
		if s.Goroutines > rep.Server.Loaded.Goroutines {
			rep.Server.Loaded = s.snapshot
		}
	}
	mu.Lock()
	rep.Joins.setTimes(times)
	mu.Unlock()
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}
