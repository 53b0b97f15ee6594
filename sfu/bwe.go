package sfu

import (
	"sort"
	"time"

	"github.com/pion/webrtc/v4"
)

// A subscriber's browser reports its estimated downlink bandwidth (REMB).
// bandwidth shares it among the simulcast videos the subscriber receives:
// audio first, then every video at its lowest layer, then one layer up at a
// time, round robin, while the total fits, never above the layer the
// subscriber asked for.
//
// A receive-side estimate cannot see past what it receives: Chrome's stays
// within about 1.5 times the incoming rate, so a subscriber that once fell
// to the low layers would never get the estimate that lets it climb back.
// When the estimate sits well above the incoming rate (nothing suggests
// congestion), bandwidth therefore probes: it raises one video by one layer
// and holds it there for probeHold while the estimate follows the new
// rate. If the estimate falls by a quarter meanwhile, the link is
// congested: the probe ends at once and the next one waits twice as long
// as the last (up to probeBackoffMax). If the layer still fits when the
// hold ends, it stays and the next probe may follow soon.
const (
	// audioReserve is the bandwidth kept for each audio track before
	// video shares the rest: audio is never starved for video.
	audioReserve = 64_000
	// stepUpMargin (in tenths) is how much more than a layer's rate the
	// budget must hold before a video steps up to it, so that the picture
	// does not flap between layers.
	stepUpMargin = 13
	// probeHold is how long a probed layer is kept while the estimate
	// grows toward it (Chrome's grows by about 8% a second).
	probeHold = 10 * time.Second
	// probeEvery is the wait after a probe that held, before the next.
	probeEvery = 3 * time.Second
	// probeBackoffMin and probeBackoffMax bound the wait after a probe
	// that congested the link.
	probeBackoffMin = 8 * time.Second
	probeBackoffMax = 2 * time.Minute
)

// estimate is a subscriber's bandwidth state, guarded by Participant.mu.
type estimate struct {
	last      uint64    // the last estimate, bits per second
	nextProbe time.Time // no probe before this
	backoff   time.Duration
	held      *downTrack // the video being probed, or nil
	heldLayer int
	heldUntil time.Time
}

// bandwidth applies a new estimate of the subscriber's downlink, in bits
// per second.
func (p *Participant) bandwidth(bps uint64) { p.bandwidthAt(bps, time.Now()) }

func (p *Participant) bandwidthAt(bps uint64, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var videos, screens []*downTrack
	var fixed, incoming uint64 // what is forwarded whatever the choice; and all of it
	measured := true           // the rates of everything forwarded are known
	for u, d := range p.downs {
		switch {
		case u.kind == webrtc.RTPCodecTypeAudio:
			fixed += audioReserve
			r := layerRate(u, 0)
			incoming += r
			measured = measured && r > 0
		case !u.simulcast:
			fixed += layerRate(u, 0)
			incoming += layerRate(u, 0)
		case u.screen:
			screens = append(screens, d)
			incoming += layerRate(u, int(d.target.Load()))
		default:
			videos = append(videos, d)
			r := layerRate(u, int(d.target.Load()))
			incoming += r
			measured = measured && r > 0
		}
	}
	budget := uint64(0)
	if bps > fixed {
		budget = bps - fixed
	}
	// A shared screen comes before every camera: its best layer that fits
	// is taken out of the budget first.
	sort.Slice(screens, func(i, j int) bool { return trackKey(screens[i]) < trackKey(screens[j]) })
	for _, d := range screens {
		l := screenLayer(d, budget)
		budget -= min(budget, layerRate(d.up, l))
		d.setFits(l)
	}
	if len(videos) == 0 {
		return
	}
	// A stable order, so that the round robin favours no one by chance.
	sort.Slice(videos, func(i, j int) bool { return trackKey(videos[i]) < trackKey(videos[j]) })
	e := &p.est
	congested := e.last > 0 && bps < e.last*3/4
	e.last = bps
	if e.held != nil && (congested || p.downs[e.held.up] != e.held) {
		e.probeFailed(now)
	}
	if e.held != nil && !now.Before(e.heldUntil) {
		// The hold is over: the estimate has had time to follow.
		alloc := allocate(videos, budget, nil, 0)
		if i := indexOf(videos, e.held); i >= 0 && alloc[i] >= e.heldLayer {
			e.held, e.backoff, e.nextProbe = nil, 0, now.Add(probeEvery)
		} else {
			e.probeFailed(now)
		}
	}
	alloc := allocate(videos, budget, e.held, e.heldLayer)
	if e.held == nil && !congested && measured && !now.Before(e.nextProbe) && bps >= incoming*stepUpMargin/10 {
		for i, d := range videos {
			if next := nextLayer(d.up, alloc[i]); next >= 0 && next <= int(d.want.Load()) {
				alloc[i] = next
				e.held, e.heldLayer, e.heldUntil, e.nextProbe = d, next, now.Add(probeHold), now.Add(probeHold)
				break
			}
		}
	}
	for i, d := range videos {
		d.setFits(alloc[i])
	}
}

// screenLayer is the highest layer of a simulcast screen, up to the one
// wanted, whose rate fits budget; its lowest when none does.
func screenLayer(d *downTrack, budget uint64) int {
	low := d.up.nearest(layerLow)
	for l := int(d.want.Load()); l > low; l-- {
		if d.up.layers[l].Load() != nil && layerRate(d.up, l) <= budget {
			return l
		}
	}
	return low
}

// probeFailed ends the probe and doubles the wait before the next.
func (e *estimate) probeFailed(now time.Time) {
	e.held = nil
	e.backoff = min(max(2*e.backoff, probeBackoffMin), probeBackoffMax)
	e.nextProbe = now.Add(e.backoff)
}

// allocate gives each video a layer within budget: held keeps heldLayer,
// the others start at their lowest and rise one layer at a time, round
// robin, up to what they asked for; rising above the layer a video is
// aimed at needs the margin.
func allocate(videos []*downTrack, budget uint64, held *downTrack, heldLayer int) []int {
	alloc := make([]int, len(videos))
	var used uint64
	for i, d := range videos {
		alloc[i] = d.up.nearest(layerLow)
		if d == held {
			alloc[i] = heldLayer
		}
		used += layerRate(d.up, alloc[i])
	}
	for raised := true; raised; {
		raised = false
		for i, d := range videos {
			next := nextLayer(d.up, alloc[i])
			if d == held || next < 0 || next > int(d.want.Load()) {
				continue
			}
			need := layerRate(d.up, next)
			if next > int(d.target.Load()) {
				need = need * stepUpMargin / 10
			}
			if used-layerRate(d.up, alloc[i])+need <= budget {
				used += layerRate(d.up, next) - layerRate(d.up, alloc[i])
				alloc[i], raised = next, true
			}
		}
	}
	return alloc
}

// layerRate is the measured rate of layer l of u, 0 if unknown.
func layerRate(u *upTrack, l int) uint64 {
	if l < 0 || l >= maxLayers {
		return 0
	}
	if x := u.layers[l].Load(); x != nil {
		return x.rate.Load()
	}
	return 0
}

// nextLayer is the lowest existing layer of u above l, or -1.
func nextLayer(u *upTrack, l int) int {
	for i := l + 1; i < maxLayers; i++ {
		if u.layers[i].Load() != nil {
			return i
		}
	}
	return -1
}

// trackKey names a down-track by its publisher and track.
func trackKey(d *downTrack) string {
	if d.up.pub == nil {
		return d.up.id
	}
	return d.up.pub.id + "/" + d.up.id
}

func indexOf(videos []*downTrack, d *downTrack) int {
	for i, v := range videos {
		if v == d {
			return i
		}
	}
	return -1
}
