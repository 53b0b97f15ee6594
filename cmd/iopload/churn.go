package main

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"
)

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
