package attendance

import (
	"context"
	"errors"
	"sort"
)

// The recorder's side toward Redis: storing each event or spooling it while
// Redis is away, replaying the spool, and the heartbeat that keeps this
// node's open segments live.

// deliver stores e, or spools it when Redis is unreachable or earlier
// events are still spooled (order is kept).
func (r *Recorder) deliver(e Event) {
	e.ID = r.newID("e")
	if r.spool.pending() == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
		_, err := r.st.Append(ctx, e)
		cancel()
		if err == nil {
			r.up()
			return
		}
		if errors.Is(err, ErrInvalid) {
			r.opts.Log.Error("attendance: event refused", "event", e.ID, "err", err)
			return
		}
		r.wentDown(err)
	}
	if err := r.spool.write(e); err != nil {
		r.opts.Log.Error("attendance: cannot spool an event; it is lost", "event", e.ID, "segment", e.Segment, "err", err)
		r.statsMu.Lock()
		r.stats.Dropped++
		r.statsMu.Unlock()
	}
}

func (r *Recorder) wentDown(err error) {
	if !r.down {
		if errors.Is(err, ErrWrongKey) {
			r.opts.Log.Error("attendance: the chain was keyed with another IOP_ATTENDANCE_KEY than this node's; spooling events until the keys match", "spool", r.opts.Spool, "err", err)
		} else {
			r.opts.Log.Warn("attendance: Redis unreachable, spooling events", "spool", r.opts.Spool, "err", err)
		}
	}
	r.down = true
}

func (r *Recorder) up() {
	if r.down {
		r.opts.Log.Info("attendance: Redis is back")
	}
	r.down = false
}

// replay offers the spool to Redis in order; events already stored are
// deduplicated by their ids, so a replay cut short is safe to repeat.
func (r *Recorder) replay() {
	err := r.spool.replay(func(e Event) error {
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
		defer cancel()
		_, err := r.st.Append(ctx, e)
		if errors.Is(err, ErrInvalid) {
			r.opts.Log.Error("attendance: spooled event refused", "event", e.ID, "err", err)
			return nil
		}
		return err
	})
	if err != nil {
		r.wentDown(err)
		return
	}
	r.up()
	r.heartbeat() // mark segments live at once: a sweeper may be close
}

// heartbeat marks this node's open segments live, revives any the sweeper
// closed while Redis was away, forgets stale drops and sweeps every
// program for dead nodes' segments.
func (r *Recorder) heartbeat() {
	now := r.opts.Now()
	for k, d := range r.dropped {
		if now.Sub(d.at) > r.opts.Grace {
			delete(r.dropped, k)
		}
	}
	if r.spool.pending() > 0 {
		return
	}
	byProgram := map[string][]string{}
	segs := map[string]*seat{}
	for _, s := range r.seats {
		byProgram[s.info.Program] = append(byProgram[s.info.Program], s.seg)
		segs[s.seg] = s
	}
	for program, ids := range byProgram {
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
		missing, err := r.st.Heartbeat(ctx, program, ids, now)
		cancel()
		if err != nil {
			r.wentDown(err)
			return
		}
		sort.Strings(missing)
		for _, id := range missing {
			r.record(segs[id], now)
		}
	}
	if r.opts.StaleAfter > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
		n, err := r.st.Sweep(ctx, now.Add(-r.opts.StaleAfter))
		cancel()
		if err != nil {
			r.opts.Log.Warn("attendance: sweep failed", "err", err)
			r.wentDown(err)
			return
		} else if n > 0 {
			r.opts.Log.Info("attendance: closed segments of a node that stopped", "segments", n)
		}
	}
	if len(byProgram) > 0 || r.opts.StaleAfter > 0 {
		// Redis answered every call of this heartbeat: it is back, even if
		// no room event has come along to prove it.
		r.up()
	}
}
