package audit

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"iop/rooms"
)

// Trail is what writes to and reads from the audit trail: a *Log.
type Trail interface {
	Append(ctx context.Context, e Entry) (Entry, error)
	Page(ctx context.Context, program, after string, limit int) ([]Entry, string, error)
}

var _ Trail = (*Log)(nil)

// queueLen is how many entries may wait for Redis before new ones are
// dropped (and counted): a room's lock is never held for the audit trail.
const queueLen = 4096

// Recorder writes entries to a Trail from one goroutine of its own: Record
// never blocks, so room events (under a room's lock) and joins can leave
// their trace without waiting for Redis. It is also the rooms.Listener that
// turns moderation events into entries.
type Recorder struct {
	trail Trail
	log   *slog.Logger

	queue chan Entry
	done  chan struct{}

	mu      sync.Mutex
	closed  bool
	dropped int
	failed  int
}

// NewRecorder starts a recorder writing to trail.
func NewRecorder(trail Trail, log *slog.Logger) *Recorder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{trail: trail, log: log, queue: make(chan Entry, queueLen), done: make(chan struct{})}
	go r.run()
	return r
}

func (r *Recorder) run() {
	defer close(r.done)
	for e := range r.queue {
		if err := r.write(e); err != nil {
			r.mu.Lock()
			r.failed++
			r.mu.Unlock()
			r.log.Error("audit trail: entry not written", "action", e.Action, "err", err)
		}
	}
}

// write appends e, retrying briefly while Redis is away.
func (r *Recorder) write(e Entry) error {
	var err error
	for try := 0; try < 5; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err = r.trail.Append(ctx, e)
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(time.Duration(try+1) * 200 * time.Millisecond)
	}
	return err
}

// Record queues e for the trail; it never blocks. At is set now if zero.
func (r *Recorder) Record(e Entry) {
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.dropped++
		return
	}
	select {
	case r.queue <- e:
	default:
		r.dropped++
		r.log.Error("audit trail: queue full, entry dropped", "action", e.Action)
	}
}

// Append writes e now and reports whether it was written: for reads and
// exports of health records, which must not happen without their trace.
func (r *Recorder) Append(ctx context.Context, e Entry) (Entry, error) {
	return r.trail.Append(ctx, e)
}

// Page reads the trail (see Log.Page).
func (r *Recorder) Page(ctx context.Context, program, after string, limit int) ([]Entry, string, error) {
	return r.trail.Page(ctx, program, after, limit)
}

// Lost reports how many entries were dropped (queue full, closed) or could
// not be written, for /metrics.
func (r *Recorder) Lost() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped + r.failed
}

// Close writes what is queued and stops.
func (r *Recorder) Close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.queue)
	}
	r.mu.Unlock()
	<-r.done
}

// RoomEvent implements rooms.Listener: every decision a therapist makes
// about a person (admit, deny, mute, remove, lock, end, hand-over) becomes
// an entry of the room's program.
func (r *Recorder) RoomEvent(e rooms.Event) {
	var action string
	subject, detail := e.Participant.Sub, e.Kind+e.MessageID
	switch {
	case e.Type == rooms.EventJoined && e.By.ID != "":
		action = ActionAdmit
	case e.Type == rooms.EventRemoved && e.Reason == rooms.ReasonDenied:
		action = ActionDeny
	case e.Type == rooms.EventRemoved && e.By.ID != "":
		action = ActionRemove
	case e.Type == rooms.EventMuted:
		action = ActionMute
	case e.Type == rooms.EventRoomUpdated && e.By.ID == "":
		return // the host's connection came back: nobody decided anything
	case e.Type == rooms.EventRoomUpdated && e.Change == rooms.ChangeHost:
		action = ActionHost
	case e.Type == rooms.EventRoomUpdated && e.Change == rooms.ChangeLock && e.Locked:
		action, subject = ActionLock, ""
	case e.Type == rooms.EventRoomUpdated && e.Change == rooms.ChangeLock:
		action, subject = ActionUnlock, ""
	case e.Type == rooms.EventRoomUpdated && e.Change == rooms.ChangeChat && e.Chat:
		action, subject = ActionChatOn, ""
	case e.Type == rooms.EventRoomUpdated && e.Change == rooms.ChangeChat:
		action, subject = ActionChatOff, ""
	case e.Type == rooms.EventChatRemoved:
		action, subject = ActionChatRemove, ""
	case e.Type == rooms.EventRoomUpdated && e.Change == rooms.ChangeAutoAdmit:
		action, subject = ActionAutoAdmit, ""
		if !e.AutoAdmit {
			action = ActionAutoAdmitOff
		}
	case e.Type == rooms.EventEnded:
		action, subject = ActionEnd, ""
	case e.Type == rooms.EventBreakout && e.By.ID != "":
		action, subject, detail = breakoutEntry(e)
	default:
		return
	}
	if e.Others != nil {
		return // the joiner's own copy of an admission; the others' copy is recorded
	}
	r.Record(Entry{
		At: e.At.UTC(), Program: e.Program, Actor: e.By.Sub, Role: string(e.By.Role),
		Action: action, Room: e.Room, Subject: subject, Detail: detail,
	})
}

// breakoutEntry is the action, subject and detail of a therapist's
// breakout-room decision; a move's or visit's detail is the breakout the
// person went to ("0": the main room).
func breakoutEntry(e rooms.Event) (action, subject, detail string) {
	group := "0"
	if e.Breakout != nil {
		group = strconv.Itoa(e.Breakout.Groups[e.Participant.ID])
	}
	switch e.Change {
	case rooms.ChangeBreakoutOpen:
		return ActionBreakoutOpen, "", strconv.Itoa(e.Breakout.Rooms)
	case rooms.ChangeBreakoutMove:
		return ActionBreakoutMove, e.Participant.Sub, group
	case rooms.ChangeBreakoutVisit:
		return ActionBreakoutVisit, "", group
	}
	return ActionBreakoutClose, "", ""
}
