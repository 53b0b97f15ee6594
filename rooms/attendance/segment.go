package attendance

import (
	"time"

	"iop/rooms"
)

// Modality is how a person took part during a stretch of time.
type Modality string

// The modalities, from the media the server received from the person
// (not what their client claims).
const (
	ModalityVideo     Modality = "video"      // the server received their video
	ModalityAudioOnly Modality = "audio_only" // their audio and no video
	ModalityNoMedia   Modality = "no_media"   // neither
)

// ModalityOf names the media state (audio, video).
func ModalityOf(audio, video bool) Modality {
	switch {
	case video:
		return ModalityVideo
	case audio:
		return ModalityAudioOnly
	}
	return ModalityNoMedia
}

// MediaChange is a person's state from At on: the media the server
// receives from them, and whether a clinician (a therapist of the program)
// is admitted in the room with them.
type MediaChange struct {
	At    time.Time `json:"at"`
	Audio bool      `json:"audio"`
	Video bool      `json:"video"`
	// NoClinician: no therapist is admitted in the room, so the time is
	// not direct service. Negative so that events recorded before it
	// existed keep their meaning (and their bytes in the chain).
	NoClinician bool `json:"no_clinician,omitempty"`
}

// state is the part of a MediaChange that is not its time.
func (c MediaChange) state() MediaChange { c.At = time.Time{}; return c }

// Gap is a stretch inside a segment that is not counted: a dropped
// connection that was resumed within the grace period.
type Gap struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Segment is one person's continuous presence in one session (room), from
// admission to leaving. A reconnect within the grace period continues the
// segment with a Gap. Times are UTC, whole seconds once stored.
type Segment struct {
	ID      string     `json:"id"`
	Program string     `json:"program"`
	Room    string     `json:"room"` // the session id
	Kind    rooms.Kind `json:"kind"`
	Title   string     `json:"title,omitempty"`
	Sub     string     `json:"sub"` // stable person id
	Name    string     `json:"name,omitempty"`
	Role    rooms.Role `json:"role"`
	Node    string     `json:"node,omitempty"` // the recorder that opened it

	Start  time.Time     `json:"start"`
	End    time.Time     `json:"end,omitzero"` // zero while open
	Reason string        `json:"reason,omitempty"`
	Media  []MediaChange `json:"media"` // the first is at Start
	Gaps   []Gap         `json:"gaps,omitempty"`
	// Corrections are the corrections applied to the segment, oldest
	// first (KindCorrect); the bounds above are the corrected ones.
	Corrections []Correction `json:"corrections,omitempty"`

	// Counted is the time up to which the segment's presence is in the
	// stored rollups: End once closed, the start of the running stretch
	// while open.
	Counted time.Time `json:"counted"`
}

// Open reports whether the segment has not ended yet.
func (s *Segment) Open() bool { return s.End.IsZero() }

// MediaAt returns the media state at t.
func (s *Segment) MediaAt(t time.Time) (audio, video bool) {
	for _, c := range s.Media {
		if c.At.After(t) {
			break
		}
		audio, video = c.Audio, c.Video
	}
	return audio, video
}

// last returns the latest time the segment knows of; later events never
// move it backwards.
func (s *Segment) last() time.Time {
	t := s.Start
	for _, x := range []time.Time{s.End, s.Counted} {
		if x.After(t) {
			t = x
		}
	}
	if n := len(s.Media); n > 0 && s.Media[n-1].At.After(t) {
		t = s.Media[n-1].At
	}
	if n := len(s.Gaps); n > 0 && s.Gaps[n-1].To.After(t) {
		t = s.Gaps[n-1].To
	}
	return t
}

// setMedia records a state at t if it differs from the current one.
func (s *Segment) setMedia(t time.Time, c MediaChange) {
	c.At = t
	if n := len(s.Media); n > 0 && s.Media[n-1].state() == c.state() {
		return
	}
	s.Media = append(s.Media, c)
}

// until returns where the segment ends for counting: End, or now while open.
func (s *Segment) until(now time.Time) time.Time {
	if s.Open() {
		return now
	}
	return s.End
}

// Amount is time present, split by media and by clinician presence, in
// whole seconds. The seconds without media and without a clinician are
// what is left (NoMedia, NoClinician).
type Amount struct {
	Seconds       int64 `json:"seconds"`            // present (admitted, not in a gap)
	VideoSeconds  int64 `json:"video_seconds"`      // of which the server received their video
	AudioSeconds  int64 `json:"audio_only_seconds"` // of which their audio and no video
	DirectSeconds int64 `json:"direct_seconds"`     // of which a therapist of the program was admitted in the room
}

// Add returns the sum of a and b.
func (a Amount) Add(b Amount) Amount {
	return Amount{a.Seconds + b.Seconds, a.VideoSeconds + b.VideoSeconds, a.AudioSeconds + b.AudioSeconds, a.DirectSeconds + b.DirectSeconds}
}

// NoMedia returns the seconds present in which the server received
// neither audio nor video from the person.
func (a Amount) NoMedia() int64 { return a.Seconds - a.VideoSeconds - a.AudioSeconds }

// NoClinician returns the seconds present without a therapist of the
// program in the room: recorded and shown, never billed.
func (a Amount) NoClinician() int64 { return a.Seconds - a.DirectSeconds }

// Breakdown is the split of an Amount that every report line and the CSV
// show beside seconds and video_seconds.
type Breakdown struct {
	AudioOnlySeconds   int64 `json:"audio_only_seconds"`   // audio received, no video
	NoMediaSeconds     int64 `json:"no_media_seconds"`     // neither received
	DirectSeconds      int64 `json:"direct_seconds"`       // a therapist of the program was admitted in the room
	NoClinicianSeconds int64 `json:"no_clinician_seconds"` // no therapist: never billed
}

// Breakdown returns a's split for reports.
func (a Amount) Breakdown() Breakdown {
	return Breakdown{a.AudioSeconds, a.NoMedia(), a.DirectSeconds, a.NoClinician()}
}

// Modality returns the media state held for the most seconds (ties go to
// video, then audio only).
func (a Amount) Modality() Modality {
	off := a.NoMedia()
	switch {
	case a.Seconds == 0:
		return ModalityNoMedia
	case a.VideoSeconds >= a.AudioSeconds && a.VideoSeconds >= off:
		return ModalityVideo
	case a.AudioSeconds >= off:
		return ModalityAudioOnly
	}
	return ModalityNoMedia
}

// Piece is the part of a segment that falls on one local date.
type Piece struct {
	Date  Date
	Start time.Time // UTC; the later of the segment's start and local midnight
	End   time.Time // UTC; the earlier of the segment's end (or now) and the next local midnight
	Amount
}

// Measure returns the segment's whole presence, counting an open segment
// up to now.
func (s *Segment) Measure(now time.Time) Amount {
	var a Amount
	for _, p := range s.Pieces(time.UTC, now) {
		a = a.Add(p.Amount)
	}
	return a
}

// Modality returns the segment's predominant modality (its state at the
// start while it has no seconds yet).
func (s *Segment) Modality(now time.Time) Modality {
	a := s.Measure(now)
	if a.Seconds == 0 {
		return ModalityOf(s.MediaAt(s.Start))
	}
	return a.Modality()
}

// Pieces splits the segment into the local dates of loc it covers, counting
// an open segment up to now. A segment that crosses local midnight is cut
// there; days are found with time.Date, so 23- and 25-hour days across DST
// changes are right. Pieces without a present second are left out.
func (s *Segment) Pieces(loc *time.Location, now time.Time) []Piece {
	return s.piecesBetween(loc, s.Start, s.until(now))
}

// piecesBetween splits the presence in [from, to) by local date.
func (s *Segment) piecesBetween(loc *time.Location, from, to time.Time) []Piece {
	if from.Before(s.Start) {
		from = s.Start
	}
	var out []Piece
	for day := DateOf(from, loc); from.Before(to); day = day.AddDays(1) {
		next := day.AddDays(1).Start(loc)
		end := next
		if to.Before(end) {
			end = to
		}
		if end.After(from) {
			if a := s.measure(from, end); a.Seconds > 0 {
				out = append(out, Piece{Date: day, Start: from, End: end, Amount: a})
			}
			from = end
		}
	}
	return out
}

// measure counts the presence in [from, to): the time outside gaps, split
// by the state in force.
func (s *Segment) measure(from, to time.Time) Amount { return s.tally(from, to, false) }

// tally counts the presence in [from, to) outside gaps by the state in
// force; with directOnly, only the time with a clinician in the room (its
// media split included).
func (s *Segment) tally(from, to time.Time, directOnly bool) Amount {
	var present, video, audio, direct time.Duration
	for i, c := range s.Media {
		a, b := c.At, to
		if i+1 < len(s.Media) {
			b = s.Media[i+1].At
		}
		if i == 0 && s.Start.Before(a) {
			a = s.Start // the state at admission holds from the start
		}
		if directOnly && c.NoClinician {
			continue
		}
		d := s.presentIn(maxTime(a, from), minTime(b, to))
		present += d
		if !c.NoClinician {
			direct += d
		}
		switch {
		case c.Video:
			video += d
		case c.Audio:
			audio += d
		}
	}
	if len(s.Media) == 0 {
		present = s.presentIn(from, to)
		direct = present
	}
	return Amount{int64(present / time.Second), int64(video / time.Second), int64(audio / time.Second), int64(direct / time.Second)}
}

// presentIn returns the length of [a, b) minus the gaps in it.
func (s *Segment) presentIn(a, b time.Time) time.Duration {
	if !b.After(a) {
		return 0
	}
	d := b.Sub(a)
	for _, g := range s.Gaps {
		if x, y := maxTime(a, g.From), minTime(b, g.To); y.After(x) {
			d -= y.Sub(x)
		}
	}
	return d
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Minutes converts seconds to report minutes: whole minutes, rounded down
// (5,430 s is 90 minutes). Reports always convert a total of exact seconds,
// never add minutes that were already rounded.
func Minutes(seconds int64) int64 { return seconds / 60 }
