package main

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// windows are the measured windows of one forwarder (iopd or the relay).
// A packet counts if it was sent inside the current window, wherever it
// arrives: a packet still in flight when the window closes counts, one
// sent before it opened does not.
type windows struct{ cur atomic.Pointer[window] }

// window is one measured interval in Unix nanoseconds; end is 0 while open.
type window struct {
	id         uint32
	start, end int64
}

// open starts the next window.
func (w *windows) open(now time.Time) {
	id := uint32(1)
	if c := w.cur.Load(); c != nil {
		id = c.id + 1
	}
	w.cur.Store(&window{id: id, start: now.UnixNano()})
}

// close ends the current window.
func (w *windows) close(now time.Time) {
	if c := w.cur.Load(); c != nil && c.end == 0 {
		w.cur.Store(&window{id: c.id, start: c.start, end: now.UnixNano()})
	}
}

// of returns the id of the window a packet sent at ns belongs to, or 0.
func (w *windows) of(ns int64) uint32 {
	c := w.cur.Load()
	if c == nil || ns < c.start || (c.end != 0 && ns >= c.end) {
		return 0
	}
	return c.id
}

// streamKey names what one receiver gets from one publisher: its audio, or
// one layer of its video (each layer numbers its packets on its own).
type streamKey struct {
	pub   uint32
	video bool
	layer byte
}

// dupWindow is how many recent sequence numbers a stream remembers to tell
// a retransmitted duplicate from a new packet.
const dupWindow = 2048

// rxStream is what one receiver got from one publisher's track. One
// goroutine writes it; snapshots read it under mu.
type rxStream struct {
	mu sync.Mutex
	// whole run
	total int64
	// measured windows
	packets, bytes, dups int64
	expected             int64 // packets sent in the windows closed so far
	lat                  histogram
	// the window being counted: the sequence numbers seen in it
	win            uint32
	any            bool
	minSeq, maxSeq uint32
	seen           [dupWindow]uint32 // seq+1 of the packet in each slot
}

// record counts one packet of n bytes received at now; win is the
// measured window it was sent in, 0 for none.
func (r *rxStream) record(st stamp, n int, now time.Time, win uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total++
	if win == 0 {
		return
	}
	if win != r.win {
		r.fold()
		r.win = win
	}
	slot := &r.seen[st.seq%dupWindow]
	if *slot == st.seq+1 {
		r.dups++
		return
	}
	*slot = st.seq + 1
	if !r.any {
		r.any, r.minSeq, r.maxSeq = true, st.seq, st.seq
	}
	r.minSeq = min(r.minSeq, st.seq)
	r.maxSeq = max(r.maxSeq, st.seq)
	r.packets++
	r.bytes += int64(n)
	r.lat.add(now.UnixNano() - st.sent)
}

// fold adds the current window's span of sequence numbers to expected.
func (r *rxStream) fold() {
	if r.any {
		r.expected += int64(r.maxSeq-r.minSeq) + 1
		r.any = false
	}
}

// receiver holds everything one participant received, by publisher and kind.
type receiver struct {
	win *windows

	mu      sync.Mutex
	streams map[streamKey]*rxStream

	// joinStart is when the signaling socket opened; firstKey when the
	// first whole remote keyframe had arrived (Unix nanoseconds, 0 until
	// then): the first frame a decoder could show.
	joinStart time.Time
	firstKey  atomic.Int64

	// offered is when the answer to the first subscribe offer with each
	// publisher's tracks (by participant id) was sent: when a browser
	// shows that publisher's tile. firstKeyOf is when the first whole
	// keyframe of each publisher (by index) had arrived. All three are
	// guarded by mu.
	offered    map[string]time.Time
	firstKeyOf map[uint32]time.Time
	keys       map[uint32]*keyframeAssembly // keyframes being received, until the first whole one
}

func newReceiver(win *windows) *receiver {
	return &receiver{win: win, streams: map[streamKey]*rxStream{}, offered: map[string]time.Time{}, firstKeyOf: map[uint32]time.Time{}, keys: map[uint32]*keyframeAssembly{}}
}

// answered notes the publishers (MediaStream ids: participant ids) whose
// tracks a subscribe offer carried, answered at now.
func (r *receiver) answered(sdp string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, line := range strings.Split(sdp, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "a=msid:")
		if !ok {
			continue
		}
		id, _, _ := strings.Cut(rest, " ")
		if _, seen := r.offered[id]; !seen && id != "" && id != "-" {
			r.offered[id] = now
		}
	}
}

// firstFrame returns the time from the answer that offered publisher id's
// tracks to the end of the first keyframe from it (index pub), if both
// happened.
func (r *receiver) firstFrame(id string, pub uint32) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	off, ok := r.offered[id]
	key, shown := r.firstKeyOf[pub]
	if !ok || !shown {
		return 0, false
	}
	return max(0, key.Sub(off)), true
}

// stream returns the stats of one publisher's track, creating them.
func (r *receiver) stream(k streamKey) *rxStream {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.streams[k]
	if s == nil {
		s = &rxStream{}
		r.streams[k] = s
	}
	return s
}

// packet accounts one raw RTP packet and returns its stamp. cache holds
// the stream of the last packet, so that a reader of one track finds its
// stream without the map.
func (r *receiver) packet(raw []byte, now time.Time, cache **rxStream, cacheKey *streamKey) (stamp, bool) {
	st, ok := readStamp(raw)
	if !ok {
		return st, false
	}
	k := streamKey{pub: st.pub, video: st.flags&stampVideo != 0, layer: st.layer}
	if *cache == nil || *cacheKey != k {
		*cache, *cacheKey = r.stream(k), k
	}
	(*cache).record(st, len(raw), now, r.win.of(st.sent))
	if k.video && st.flags&stampKey != 0 {
		r.keyPacket(st, now) // a few keyframes per publisher and minute
	}
	return st, true
}

// keyframeAssembly collects the packets of the keyframe a publisher sends
// now, to tell when a whole one has arrived (retransmissions included).
type keyframeAssembly struct {
	layer       byte
	first, last uint32
	haveLast    bool
	got         map[uint32]bool
}

// keyPacket notes a packet of a keyframe; the first whole keyframe from a
// publisher is the first frame its tile can show.
func (r *receiver) keyPacket(st stamp, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, shown := r.firstKeyOf[st.pub]; shown {
		return
	}
	a := r.keys[st.pub]
	if st.flags&stampFirst != 0 && (a == nil || st.seq > a.first || st.layer != a.layer) {
		a = &keyframeAssembly{layer: st.layer, first: st.seq, got: map[uint32]bool{}}
		r.keys[st.pub] = a
	}
	if a == nil || st.layer != a.layer || st.seq < a.first {
		return // the middle of a keyframe whose start was lost
	}
	a.got[st.seq] = true
	if st.flags&stampLast != 0 {
		a.last, a.haveLast = st.seq, true
	}
	if a.haveLast && uint32(len(a.got)) == a.last-a.first+1 {
		r.firstKeyOf[st.pub] = now
		delete(r.keys, st.pub)
		r.firstKey.CompareAndSwap(0, now.UnixNano())
	}
}

// shows reports whether a whole keyframe from publisher pub has arrived.
func (r *receiver) shows(pub uint32) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.firstKeyOf[pub]
	return ok
}

// received returns how many packets arrived from each publisher, kind and
// video layer over the whole run.
func (r *receiver) received() map[streamKey]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[streamKey]int64, len(r.streams))
	for k, s := range r.streams {
		s.mu.Lock()
		out[k] = s.total
		s.mu.Unlock()
	}
	return out
}

// joinTime returns the time from the socket's opening to the end of the
// first remote keyframe, if one arrived.
func (r *receiver) joinTime() (time.Duration, bool) {
	k := r.firstKey.Load()
	if k == 0 || r.joinStart.IsZero() {
		return 0, false
	}
	return time.Duration(k - r.joinStart.UnixNano()), true
}

// windowStats sums the measured windows over receivers; read it once the
// last window has closed and its packets have arrived.
type windowStats struct {
	packets, bytes, dups, expected int64
	videoByLayer                   [maxLayers]int64 // video packets received of each layer
	lat                            histogram
}

func (w *windowStats) add(r *receiver) {
	r.mu.Lock()
	keys := make([]streamKey, 0, len(r.streams))
	streams := make([]*rxStream, 0, len(r.streams))
	for k, s := range r.streams {
		keys = append(keys, k)
		streams = append(streams, s)
	}
	r.mu.Unlock()
	for i, s := range streams {
		s.mu.Lock()
		s.fold()
		if k := keys[i]; k.video && int(k.layer) < maxLayers {
			w.videoByLayer[k.layer] += s.packets
		}
		w.packets += s.packets
		w.bytes += s.bytes
		w.dups += s.dups
		w.expected += s.expected
		w.lat.merge(&s.lat)
		s.mu.Unlock()
	}
}

// lossPercent is the share of the packets sent in the windows (between the
// first and the last one seen of each) that never arrived.
func (w *windowStats) lossPercent() float64 {
	if w.expected == 0 {
		return 0
	}
	return 100 * float64(max(0, w.expected-w.packets)) / float64(w.expected)
}
