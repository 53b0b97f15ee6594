package attendance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"iop/rooms"
)

// RoomInfo is what attendance records of a room with a segment: the room
// event carries it (rooms.Event's Program, RoomKind and Title).
type RoomInfo struct {
	Program string     // the program whose attendance it counts toward
	Kind    rooms.Kind // the session kind
	Title   string
}

// RecorderOptions configure a Recorder. Zero fields take their defaults.
type RecorderOptions struct {
	// Node is this node's id; event and segment ids start with it.
	Node string
	// Spool is the file events go to while Redis is unreachable (JSON
	// lines, fsync'd); required. Keep it on a disk that survives a
	// restart: a restarted node replays what the old process spooled.
	Spool string
	// Grace is how long after a drop a reconnect continues the segment
	// (default 60 s).
	Grace time.Duration
	// Heartbeat is how often open segments are marked live (default 15 s).
	Heartbeat time.Duration
	// StaleAfter is how long without a heartbeat a segment of any node is
	// closed as lost, at its last heartbeat; the recorder sweeps every
	// program each Heartbeat (default 45 s; negative: do not sweep).
	StaleAfter time.Duration
	// Retry is how often a spool is offered to Redis again (default 1 s).
	Retry time.Duration
	// Timeout bounds each Redis call (default 3 s).
	Timeout time.Duration
	// Now is the clock of heartbeats and shutdown (default time.Now);
	// admissions, leaves and media changes take the room events' times.
	Now func() time.Time
	// Log receives warnings (no names, only ids); default slog.Default().
	Log *slog.Logger
}

// DefaultHeartbeat is how often a recorder marks its open segments live.
const DefaultHeartbeat = 15 * time.Second

// DefaultStaleAfter is how long a segment may go without a heartbeat
// before another node closes it.
const DefaultStaleAfter = 45 * time.Second

func (o RecorderOptions) withDefaults() RecorderOptions {
	if o.Grace == 0 {
		o.Grace = rooms.DefaultGrace // the room's grace: one reconnect window
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.StaleAfter == 0 {
		o.StaleAfter = DefaultStaleAfter
	}
	if o.Retry == 0 {
		o.Retry = time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return o
}

// Recorder turns room events into attendance events. It is a
// rooms.Listener: RoomEvent only queues, and one goroutine owned by the
// Recorder does the rest, so a room never waits for Redis. Every admitted
// person is recorded (clients, family, therapists, staff) with their role.
// A person's connections in one room share one segment (a new tab, or a
// reconnect before the old socket times out); a drop followed by a
// reconnect within Grace continues the segment, and the gap is not
// counted. While Redis is unreachable, events go to the spool file and are
// replayed in order when it returns.
type Recorder struct {
	st   *Store
	opts RecorderOptions
	boot string

	mu     sync.Mutex
	queue  []item
	closed bool
	wake   chan struct{}
	done   chan struct{}

	// Owned by the run goroutine.
	n       uint64
	seats   map[seatKey]*seat
	conns   map[connKey]seatKey
	dropped map[seatKey]dropped
	spool   *spool
	flushes []chan struct{}
	stats   RecorderStats
	statsMu sync.Mutex
	down    bool
}

var _ rooms.Listener = (*Recorder)(nil)

type item struct {
	ev    rooms.Event
	flush chan struct{} // a Flush waiting for everything before it
	stop  bool          // Close
}

// A room is (program, room id): the same id in two programs is two rooms.
type seatKey struct{ program, room, sub string }
type connKey struct{ program, room, id string }

type media struct{ audio, video bool }

// state is what a seat's segment records besides time: the media received
// and whether no therapist is admitted in the room.
type state struct {
	media
	noClinician bool
}

// seat is one person's open segment in one room.
type seat struct {
	seg     string
	info    RoomInfo
	p       rooms.Participant
	conns   map[string]media
	current state
}

type dropped struct {
	seg string
	at  time.Time
}

// RecorderStats says what a recorder holds, for metrics and readiness.
type RecorderStats struct {
	Open    int  // segments open on this node
	Queued  int  // room events not yet handled
	Spooled int  // events in the spool, waiting for Redis
	Down    bool // Redis was unreachable at the last attempt
	Dropped int  // events lost (unresolvable room, unwritable spool)
}

// NewRecorder starts a recorder that stores through st. Events left in the
// spool by an earlier process are replayed first.
func NewRecorder(st *Store, opts RecorderOptions) (*Recorder, error) {
	opts = opts.withDefaults()
	if opts.Spool == "" || opts.Node == "" {
		return nil, errors.New("attendance recorder: Node and Spool are required")
	}
	sp, err := openSpool(opts.Spool)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	r := &Recorder{
		st: st, opts: opts, boot: hex.EncodeToString(b),
		wake: make(chan struct{}, 1), done: make(chan struct{}),
		seats: map[seatKey]*seat{}, conns: map[connKey]seatKey{}, dropped: map[seatKey]dropped{},
		spool: sp,
	}
	r.setStats()
	go r.run()
	return r, nil
}

// RoomEvent queues a room event; it never blocks.
func (r *Recorder) RoomEvent(e rooms.Event) {
	switch e.Type {
	case rooms.EventJoined, rooms.EventUpdated, rooms.EventReceiving, rooms.EventLeft, rooms.EventEnded:
	default:
		return
	}
	e.Others, e.Waiting = nil, nil
	r.push(item{ev: e})
}

func (r *Recorder) push(it item) bool {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return false
	}
	r.queue = append(r.queue, it)
	if it.stop {
		r.closed = true
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return true
}

// Flush waits until every event queued before it is stored in Redis (the
// spool included), or ctx ends.
func (r *Recorder) Flush(ctx context.Context) error {
	c := make(chan struct{})
	if !r.push(item{flush: c}) {
		return errors.New("attendance recorder: closed")
	}
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush attendance: %w", ctx.Err())
	}
}

// Close closes this node's open segments at now (reason shutdown), stores
// what it can and stops. Events Redis could not take stay in the spool
// for the next start; Close then returns an error saying how many.
func (r *Recorder) Close() error {
	r.push(item{stop: true}) // false when already closing: wait all the same
	<-r.done
	if n := r.Stats().Spooled; n > 0 {
		return fmt.Errorf("attendance recorder: %d events left in the spool %s", n, r.opts.Spool)
	}
	return nil
}

// Stats reports what the recorder holds.
func (r *Recorder) Stats() RecorderStats {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	return r.stats
}

func (r *Recorder) setStats() {
	r.mu.Lock()
	q := len(r.queue)
	r.mu.Unlock()
	r.statsMu.Lock()
	r.stats.Open, r.stats.Queued, r.stats.Spooled, r.stats.Down = len(r.seats), q, r.spool.pending(), r.down
	r.statsMu.Unlock()
}

func (r *Recorder) run() {
	defer close(r.done)
	defer r.spool.close()
	hb := time.NewTicker(r.opts.Heartbeat)
	defer hb.Stop()
	retry := time.NewTicker(r.opts.Retry)
	defer retry.Stop()
	if r.spool.pending() > 0 {
		r.replay()
	}
	for {
		select {
		case <-r.wake:
		case <-hb.C:
			r.heartbeat()
		case <-retry.C:
			if r.spool.pending() > 0 {
				r.replay()
			}
		}
		r.mu.Lock()
		batch := r.queue
		r.queue = nil
		r.mu.Unlock()
		for _, it := range batch {
			switch {
			case it.stop:
				r.shutdown()
				r.setStats()
				return
			case it.flush != nil:
				r.flushes = append(r.flushes, it.flush)
			default:
				r.handle(it.ev)
			}
		}
		r.releaseFlushes()
		r.setStats()
	}
}

// releaseFlushes answers the waiting Flush calls once nothing is spooled.
func (r *Recorder) releaseFlushes() {
	if r.spool.pending() > 0 {
		r.replay()
	}
	if r.spool.pending() > 0 {
		return
	}
	for _, c := range r.flushes {
		close(c)
	}
	r.flushes = nil
}

func (r *Recorder) shutdown() {
	now := r.opts.Now()
	keys := make([]seatKey, 0, len(r.seats))
	for k := range r.seats {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		return a.program+"/"+a.room+"/"+a.sub < b.program+"/"+b.room+"/"+b.sub
	})
	for _, k := range keys {
		r.closeSeat(k, ReasonShutdown, now)
	}
	if r.spool.pending() > 0 {
		r.replay()
	}
	for _, c := range r.flushes {
		close(c) // Close does not wait for Redis to return
	}
	r.flushes = nil
}

func (r *Recorder) newID(kind string) string {
	r.n++
	return r.opts.Node + "." + r.boot + "." + kind + strconv.FormatUint(r.n, 10)
}

func (r *Recorder) handle(e rooms.Event) {
	at := e.At
	if at.IsZero() {
		at = r.opts.Now()
	}
	p := e.Participant
	switch e.Type {
	case rooms.EventJoined:
		r.admit(e, at)
	case rooms.EventUpdated, rooms.EventReceiving:
		k, ok := r.conns[connKey{e.Program, e.Room, p.ID}]
		if !ok {
			return
		}
		s := r.seats[k]
		s.conns[p.ID] = mediaOf(p)
		r.mediaChanged(s, at)
	case rooms.EventLeft:
		ck := connKey{e.Program, e.Room, p.ID}
		k, ok := r.conns[ck]
		if !ok {
			return
		}
		delete(r.conns, ck)
		s := r.seats[k]
		delete(s.conns, p.ID)
		if len(s.conns) > 0 {
			r.mediaChanged(s, at) // another connection of the same person stays
			return
		}
		reason := e.Reason
		if reason == "" {
			reason = rooms.ReasonLeft
		}
		r.closeSeat(k, reason, at)
		r.cliniciansChanged(k, at)
		if reason == rooms.ReasonDropped {
			r.dropped[k] = dropped{seg: s.seg, at: at}
		}
	case rooms.EventEnded:
		var keys []seatKey
		for k := range r.seats {
			if k.program == e.Program && k.room == e.Room {
				keys = append(keys, k)
			}
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i].sub < keys[j].sub })
		for _, k := range keys {
			r.closeSeat(k, rooms.ReasonEnded, at)
		}
		for k := range r.dropped {
			if k.program == e.Program && k.room == e.Room {
				delete(r.dropped, k)
			}
		}
	}
}

// admit opens (or resumes) the admitted person's segment. The program is
// the room's, which is the person's own: a grant only ever names rooms of
// its program, so no room is shared between programs.
func (r *Recorder) admit(e rooms.Event, at time.Time) {
	p := e.Participant
	if e.Program == "" || (p.Program != "" && p.Program != e.Program) {
		r.opts.Log.Error("attendance: admission outside the person's program; not recorded", "participant", p.ID)
		r.statsMu.Lock()
		r.stats.Dropped++
		r.statsMu.Unlock()
		return
	}
	k := seatKey{e.Program, e.Room, p.Sub}
	if s := r.seats[k]; s != nil {
		s.conns[p.ID] = mediaOf(p)
		r.conns[connKey{e.Program, e.Room, p.ID}] = k
		r.mediaChanged(s, at)
		return
	}
	info := RoomInfo{Program: e.Program, Kind: e.RoomKind, Title: e.Title}
	m := mediaOf(p)
	s := &seat{info: info, p: p, conns: map[string]media{p.ID: m}, current: state{media: m}}
	kind := KindAdmit
	if d, ok := r.dropped[k]; ok && at.Sub(d.at) <= r.opts.Grace {
		s.seg, kind = d.seg, KindResume
	} else {
		s.seg = r.newID("s")
	}
	delete(r.dropped, k)
	r.seats[k] = s
	r.conns[connKey{e.Program, e.Room, p.ID}] = k
	s.current.noClinician = !r.clinicianIn(k)
	r.deliver(Event{
		Kind: kind, Program: info.Program, Segment: s.seg, At: at,
		Room: e.Room, RoomKind: info.Kind, Title: info.Title, Sub: p.Sub, Name: p.Name, Role: p.Role,
		Node: r.opts.Node, Audio: m.audio, Video: m.video, NoClinician: s.current.noClinician,
	})
	if p.Role == rooms.RoleTherapist {
		r.cliniciansChanged(k, at)
	}
}

// mediaOf is what a connection's modality counts: a kind the server
// receives (the media plane's evidence) and the person has not turned off.
// A browser with its camera off still sends black frames; they are not
// video.
func mediaOf(p rooms.Participant) media {
	return media{audio: p.Receiving.Audio && p.Audio, video: p.Receiving.Video && p.Video}
}

// clinicianIn reports whether a therapist has an open seat in k's room:
// the room is the program's, so its therapists are the program's.
func (r *Recorder) clinicianIn(k seatKey) bool {
	for o, s := range r.seats {
		if o.program == k.program && o.room == k.room && s.p.Role == rooms.RoleTherapist {
			return true
		}
	}
	return false
}

// cliniciansChanged records at at, for everyone seated in k's room, whether
// a therapist is there now.
func (r *Recorder) cliniciansChanged(k seatKey, at time.Time) {
	present := r.clinicianIn(k)
	var keys []seatKey
	for o := range r.seats {
		if o.program == k.program && o.room == k.room {
			keys = append(keys, o)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].sub < keys[j].sub })
	for _, o := range keys {
		s := r.seats[o]
		if s.current.noClinician != !present {
			s.current.noClinician = !present
			r.record(s, at)
		}
	}
}

// mediaChanged records the seat's media state if it changed: a person is
// on camera when any of their connections is.
func (r *Recorder) mediaChanged(s *seat, at time.Time) {
	var m media
	for _, c := range s.conns {
		m.audio, m.video = m.audio || c.audio, m.video || c.video
	}
	if m == s.current.media {
		return
	}
	s.current.media = m
	r.record(s, at)
}

// record writes the seat's current state from at on.
func (r *Recorder) record(s *seat, at time.Time) {
	c := s.current
	r.deliver(Event{Kind: KindMedia, Program: s.info.Program, Segment: s.seg, At: at, Audio: c.audio, Video: c.video, NoClinician: c.noClinician})
}

func (r *Recorder) closeSeat(k seatKey, reason string, at time.Time) {
	s := r.seats[k]
	if s == nil {
		return
	}
	delete(r.seats, k)
	for id := range s.conns {
		delete(r.conns, connKey{k.program, k.room, id})
	}
	r.deliver(Event{Kind: KindLeave, Program: s.info.Program, Segment: s.seg, At: at, Reason: reason})
}
