package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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
			if d, ok := rxs[i].firstFrame(peers[j].part.ID(), o.idx); ok {
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

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}
