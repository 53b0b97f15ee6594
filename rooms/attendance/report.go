package attendance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"iop/rooms"
	"iop/rooms/spreadsheet"
)

// WeekReport is one person's ISO week: docs/api.md's
// GET /v1/attendance/people/{sub}/weeks/{yyyy-Www}. Open segments count up
// to now (Live). Minutes are whole minutes of exact seconds, rounded down.
type WeekReport struct {
	Program    string     `json:"program"`
	Sub        string     `json:"sub"`
	Name       string     `json:"name,omitempty"`
	Role       rooms.Role `json:"role,omitempty"`
	Week       Week       `json:"week"`
	Zone       string     `json:"zone"`
	Start      time.Time  `json:"start"` // local Monday 00:00, in UTC
	End        time.Time  `json:"end"`   // next local Monday 00:00, in UTC
	StartLocal string     `json:"start_local"`
	EndLocal   string     `json:"end_local"`

	Seconds          int64 `json:"seconds"`
	VideoSeconds     int64 `json:"video_seconds"`
	Minutes          int64 `json:"minutes"`
	VideoMinutes     int64 `json:"video_minutes"`
	Days             int   `json:"days"`          // local days with any attendance
	BillableDays     int   `json:"billable_days"` // local days with at least Rules.BillableDay
	SessionsAttended int   `json:"sessions_attended"`

	// Clients only: targets, status and absences.
	TargetHours float64    `json:"target_hours,omitempty"`
	TargetDays  int        `json:"target_days,omitempty"`
	Status      Status     `json:"status,omitempty"`
	Absences    int        `json:"absences"`         // expected sessions of the week missed so far
	Missed      []Expected `json:"missed,omitempty"` // those sessions
	Flags       []Flag     `json:"flags,omitempty"`  // absence patterns as of the week's end (or now)

	Live     bool          `json:"live"` // an open segment is counted up to now
	Daily    []DayLine     `json:"daily"`
	Sessions []SessionLine `json:"sessions"`
}

// DayLine is one local day of a person's attendance.
type DayLine struct {
	Date         Date  `json:"date_local"`
	Seconds      int64 `json:"seconds"`
	VideoSeconds int64 `json:"video_seconds"`
	Minutes      int64 `json:"minutes"`
	VideoMinutes int64 `json:"video_minutes"`
	Sessions     int   `json:"sessions"`
	Billable     bool  `json:"billable"`
}

// SessionLine is a person's attendance of one session (room) in a week.
type SessionLine struct {
	Room         string     `json:"room"`
	Kind         rooms.Kind `json:"kind,omitempty"`
	Title        string     `json:"title,omitempty"`
	Start        time.Time  `json:"start"` // first admission (UTC)
	End          *time.Time `json:"end"`   // last leave; null while open
	StartLocal   string     `json:"start_local"`
	EndLocal     *string    `json:"end_local"`
	Seconds      int64      `json:"seconds"`
	VideoSeconds int64      `json:"video_seconds"`
	Minutes      int64      `json:"minutes"`
	VideoMinutes int64      `json:"video_minutes"`
	Modality     Modality   `json:"modality"`
}

// ProgramWeekReport is everyone's week in a program: docs/api.md's
// GET /v1/attendance/programs/{program}/weeks/{yyyy-Www}.
type ProgramWeekReport struct {
	Program string        `json:"program"`
	Week    Week          `json:"week"`
	Zone    string        `json:"zone"`
	People  []*WeekReport `json:"people"`
}

// RoomRef names a session as docs/api.md's room object does (the caller
// may add locked).
type RoomRef struct {
	ID    string     `json:"id"`
	Kind  rooms.Kind `json:"kind,omitempty"`
	Title string     `json:"title,omitempty"`
}

// RoomReport is a session's roster: docs/api.md's
// GET /v1/attendance/rooms/{room}.
type RoomReport struct {
	Program      string        `json:"program"`
	Zone         string        `json:"zone"`
	Room         RoomRef       `json:"room"`
	Seconds      int64         `json:"seconds"` // everyone's
	VideoSeconds int64         `json:"video_seconds"`
	People       []*RoomPerson `json:"people"` // in order of first admission
}

// RoomPerson is one person's presence in a session.
type RoomPerson struct {
	Sub          string        `json:"sub"`
	Name         string        `json:"name,omitempty"`
	Role         rooms.Role    `json:"role"`
	Seconds      int64         `json:"seconds"`
	VideoSeconds int64         `json:"video_seconds"`
	Minutes      int64         `json:"minutes"`
	VideoMinutes int64         `json:"video_minutes"`
	Segments     []SegmentLine `json:"segments"`
}

// SegmentLine is one segment in a roster.
type SegmentLine struct {
	ID           string     `json:"id"`
	Start        time.Time  `json:"start"`
	End          *time.Time `json:"end"` // null while open
	StartLocal   string     `json:"start_local"`
	EndLocal     *string    `json:"end_local"`
	Seconds      int64      `json:"seconds"` // gaps of resumed drops excluded
	VideoSeconds int64      `json:"video_seconds"`
	Modality     Modality   `json:"modality"`
	Reason       string     `json:"reason,omitempty"` // why it closed
	Gaps         []Gap      `json:"gaps,omitempty"`
}

// view is one consistent way of reading a program: its zone, live rollup
// generation and the time "now".
type view struct {
	program string
	k       keys
	gp      string
	loc     *time.Location
	now     time.Time
	open    []*Segment // loaded on first use
	loaded  bool
}

func (s *Store) view(ctx context.Context, program string) (*view, error) {
	k := keysFor(program)
	h, err := readHead(ctx, s.rdb, k)
	if err != nil {
		return nil, fmt.Errorf("read attendance head: %w", err)
	}
	loc, err := s.Zone(ctx, program)
	if err != nil {
		return nil, err
	}
	return &view{program: program, k: k, gp: k.gen(h.gen), loc: loc, now: s.opts.Now().UTC().Truncate(time.Second)}, nil
}

// segments reads segments by id, skipping unknown ones.
func (s *Store) segments(ctx context.Context, v *view, ids []string) ([]*Segment, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	vals, err := s.rdb.HMGet(ctx, v.gp+segKey(), ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("read segments: %w", err)
	}
	out := make([]*Segment, 0, len(vals))
	for i, x := range vals {
		str, ok := x.(string)
		if !ok {
			continue
		}
		var seg Segment
		if err := json.Unmarshal([]byte(str), &seg); err != nil {
			return nil, fmt.Errorf("decode segment %s: %w", ids[i], err)
		}
		out = append(out, &seg)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.Before(out[j].Start)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// openSegments returns the program's open segments.
func (s *Store) openSegments(ctx context.Context, v *view) ([]*Segment, error) {
	if v.loaded {
		return v.open, nil
	}
	ids, err := s.rdb.HKeys(ctx, v.k.open).Result()
	if err != nil {
		return nil, fmt.Errorf("list open segments: %w", err)
	}
	segs, err := s.segments(ctx, v, ids)
	if err != nil {
		return nil, err
	}
	v.open, v.loaded = nil, true
	for _, seg := range segs {
		if seg.Open() {
			v.open = append(v.open, seg)
		}
	}
	return v.open, nil
}

// readTotals decodes a day or week rollup hash.
func (s *Store) readTotals(ctx context.Context, key string) (*Totals, map[string]string, error) {
	h, err := s.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("read rollup: %w", err)
	}
	return decodeTotals(h), h, nil
}

func decodeTotals(h map[string]string) *Totals {
	t := &Totals{Rooms: map[string]Amount{}, Days: map[Date]Amount{}}
	amount := func(m map[string]Amount, key string, set func(*Amount)) {
		a := m[key]
		set(&a)
		m[key] = a
	}
	for f, str := range h {
		n, err := strconv.ParseInt(str, 10, 64)
		if err != nil {
			continue // name, role
		}
		switch {
		case f == "seconds":
			t.Seconds = n
		case f == "video_seconds":
			t.VideoSeconds = n
		case f == "audio_seconds":
			t.AudioSeconds = n
		case strings.HasPrefix(f, "r:"):
			amount(t.Rooms, f[2:], func(a *Amount) { a.Seconds = n })
		case strings.HasPrefix(f, "rv:"):
			amount(t.Rooms, f[3:], func(a *Amount) { a.VideoSeconds = n })
		case strings.HasPrefix(f, "ra:"):
			amount(t.Rooms, f[3:], func(a *Amount) { a.AudioSeconds = n })
		case strings.HasPrefix(f, "d:"), strings.HasPrefix(f, "dv:"), strings.HasPrefix(f, "da:"):
			kind, date, _ := strings.Cut(f, ":")
			d, err := ParseDate(date)
			if err != nil {
				continue
			}
			a := t.Days[d]
			switch kind {
			case "d":
				a.Seconds = n
			case "dv":
				a.VideoSeconds = n
			case "da":
				a.AudioSeconds = n
			}
			t.Days[d] = a
		}
	}
	return t
}

// Week returns one person's ISO week (weeks are in the program's zone).
// Targets, status and absences are filled in for clients, and for a person
// with no attendance recorded (their role is then "client" if the Roster
// lists them, else empty).
func (s *Store) Week(ctx context.Context, program, sub string, w Week) (*WeekReport, error) {
	v, err := s.view(ctx, program)
	if err != nil {
		return nil, err
	}
	r, err := s.personWeek(ctx, v, sub, w)
	if err != nil || r.Role != "" || s.opts.Roster == nil {
		return r, err
	}
	list, err := s.opts.Roster.Enrolled(ctx, program, r.Start, r.End)
	if err != nil {
		return nil, fmt.Errorf("read roster: %w", err)
	}
	for _, x := range list {
		if x == sub {
			r.Role = rooms.RoleClient
		}
	}
	return r, nil
}

// weekSegments returns the segments indexed under key (a week's, or a
// person's week's) plus the open ones not yet indexed, of sub only when sub
// is set.
func (s *Store) weekSegments(ctx context.Context, v *view, key, sub string) ([]*Segment, error) {
	ids, err := s.rdb.SMembers(ctx, v.gp+key).Result()
	if err != nil {
		return nil, fmt.Errorf("read week segments: %w", err)
	}
	segs, err := s.segments(ctx, v, ids)
	if err != nil {
		return nil, err
	}
	open, err := s.openSegments(ctx, v)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, seg := range segs {
		have[seg.ID] = true
	}
	for _, seg := range open {
		if (sub == "" || seg.Sub == sub) && !have[seg.ID] {
			segs = append(segs, seg)
		}
	}
	return segs, nil
}

// personWeek reads one person's week. A person with no attendance ever
// recorded (no role known) is reported by the client rules.
func (s *Store) personWeek(ctx context.Context, v *view, sub string, w Week) (*WeekReport, error) {
	t, h, err := s.readTotals(ctx, v.gp+weekKey(sub, w))
	if err != nil {
		return nil, err
	}
	segs, err := s.weekSegments(ctx, v, personSegsKey(sub, w), sub)
	if err != nil {
		return nil, err
	}
	start, end := w.Start(v.loc), w.End(v.loc)
	r := &WeekReport{
		Program: v.program, Sub: sub, Name: h["name"], Role: rooms.Role(h["role"]), Week: w, Zone: v.loc.String(),
		Start: start.UTC(), End: end.UTC(), StartLocal: localTime(start, v.loc), EndLocal: localTime(end, v.loc),
	}
	// Open segments count up to now on top of the stored rollups, which
	// hold their stretches up to Counted.
	for _, seg := range segs {
		if r.Name == "" || r.Role == "" {
			r.Name, r.Role = seg.Name, seg.Role
		}
		if seg.Open() {
			for _, p := range seg.piecesBetween(v.loc, seg.Counted, v.now) {
				if w.Contains(p.Date) {
					t.add(seg.Room, p)
					r.Live = true
				}
			}
		}
	}
	r.Seconds, r.VideoSeconds = t.Seconds, t.VideoSeconds
	r.Minutes, r.VideoMinutes = Minutes(t.Seconds), Minutes(t.VideoSeconds)
	r.Days, r.BillableDays, r.SessionsAttended = t.DaysAttended(), t.BillableDays(s.opts.Rules.BillableDay), t.Sessions()
	r.Daily, r.Sessions = dayLines(v, segs, t, s.opts.Rules.BillableDay), sessionLines(v, w, segs, t)

	if r.Role == rooms.RoleClient || r.Role == "" {
		if err := s.clientWeek(ctx, v, r, t); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// dayLines lists the attended local days of a week's totals, with the
// number of sessions the segments show on each.
func dayLines(v *view, segs []*Segment, t *Totals, billable time.Duration) []DayLine {
	sessions := map[Date]map[string]bool{}
	for _, seg := range segs {
		for _, p := range seg.Pieces(v.loc, v.now) {
			if sessions[p.Date] == nil {
				sessions[p.Date] = map[string]bool{}
			}
			sessions[p.Date][seg.Room] = true
		}
	}
	out := []DayLine{}
	for _, d := range t.SortedDays() {
		a := t.Days[d]
		out = append(out, DayLine{
			Date: d, Seconds: a.Seconds, VideoSeconds: a.VideoSeconds, Sessions: len(sessions[d]),
			Minutes: Minutes(a.Seconds), VideoMinutes: Minutes(a.VideoSeconds),
			Billable: time.Duration(a.Seconds)*time.Second >= billable,
		})
	}
	return out
}

// sessionLines lists the sessions of a week with the person's time in
// each: seconds from the totals (rollups plus open segments), when and what
// from the segments.
func sessionLines(v *view, w Week, segs []*Segment, t *Totals) []SessionLine {
	type acc struct {
		line        SessionLine
		first, last time.Time
		open        bool
	}
	byRoom := map[string]*acc{}
	var order []string
	for _, seg := range segs {
		var first, last time.Time
		for _, p := range seg.Pieces(v.loc, v.now) {
			if w.Contains(p.Date) {
				if first.IsZero() {
					first = p.Start
				}
				last = p.End
			}
		}
		if first.IsZero() {
			if !seg.Open() || !w.Contains(DateOf(seg.Start, v.loc)) {
				continue
			}
			first, last = seg.Start, seg.Start // admitted this very second
		}
		a := byRoom[seg.Room]
		if a == nil {
			a = &acc{line: SessionLine{Room: seg.Room, Kind: seg.Kind, Title: seg.Title}, first: first}
			byRoom[seg.Room] = a
			order = append(order, seg.Room)
		}
		a.first, a.last = minTime(a.first, first), maxTime(a.last, last)
		a.open = a.open || seg.Open()
	}
	out := []SessionLine{}
	for _, room := range order {
		a := byRoom[room]
		l, amt := a.line, t.Rooms[room]
		l.Start, l.StartLocal = a.first.UTC(), localTime(a.first, v.loc)
		if !a.open {
			end, el := a.last.UTC(), localTime(a.last, v.loc)
			l.End, l.EndLocal = &end, &el
		}
		l.Seconds, l.VideoSeconds = amt.Seconds, amt.VideoSeconds
		l.Minutes, l.VideoMinutes = Minutes(amt.Seconds), Minutes(amt.VideoSeconds)
		l.Modality = amt.Modality()
		out = append(out, l)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// clientWeek adds a client's targets, status, absences and flags.
func (s *Store) clientWeek(ctx context.Context, v *view, r *WeekReport, t *Totals) error {
	targets, err := s.TargetsOf(ctx, v.program, r.Sub)
	if err != nil {
		return err
	}
	r.TargetHours, r.TargetDays = targets.Hours, targets.Days
	in := StatusInput{Now: v.now, Loc: v.loc, Week: r.Week, Totals: t, Targets: targets, MaxDaily: s.opts.Rules.MaxDaily}
	if s.opts.Schedule == nil {
		r.Status = WeeklyStatus(in)
		return nil
	}
	start, end := r.Week.Start(v.loc), r.Week.End(v.loc)
	exp, err := s.opts.Schedule.Expected(ctx, v.program, r.Sub, start, end)
	if errors.Is(err, ErrNoSchedule) {
		r.Status = WeeklyStatus(in)
		return nil
	}
	if err != nil {
		return fmt.Errorf("read schedule: %w", err)
	}
	in.Scheduled, in.Expected = true, exp
	r.Status = WeeklyStatus(in)
	attended := map[string]bool{}
	for room, a := range t.Rooms {
		attended[room] = a.Seconds > 0
	}
	r.Missed = Absences(exp, attended, v.now)
	r.Absences = len(r.Missed)

	// Flags look back Window weeks from the week's end (or now).
	at := minTime(end, v.now)
	p := s.opts.Rules.Absences
	from := at.AddDate(0, 0, -7*p.Window)
	window, err := s.opts.Schedule.Expected(ctx, v.program, r.Sub, from, at)
	if err != nil {
		return fmt.Errorf("read schedule: %w", err)
	}
	for wk := WeekOf(from, v.loc); !wk.Start(v.loc).After(at) && wk != r.Week; wk = wk.Add(1) {
		past, _, err := s.readTotals(ctx, v.gp+weekKey(r.Sub, wk))
		if err != nil {
			return err
		}
		for room, a := range past.Rooms {
			attended[room] = attended[room] || a.Seconds > 0
		}
	}
	r.Flags = AbsenceFlags(window, attended, at, p)
	return nil
}

// ProgramWeek returns every person with attendance in the week, and every
// client the Roster lists as enrolled, ordered by role (clients first),
// name and sub.
func (s *Store) ProgramWeek(ctx context.Context, program string, w Week) (*ProgramWeekReport, error) {
	v, err := s.view(ctx, program)
	if err != nil {
		return nil, err
	}
	subs, err := s.rdb.SMembers(ctx, v.gp+peopleKey(w)).Result()
	if err != nil {
		return nil, fmt.Errorf("read week people: %w", err)
	}
	seen := map[string]bool{}
	for _, sub := range subs {
		seen[sub] = true
	}
	open, err := s.openSegments(ctx, v)
	if err != nil {
		return nil, err
	}
	for _, seg := range open {
		if !seen[seg.Sub] && seg.Start.Before(w.End(v.loc)) {
			seen[seg.Sub] = true
		}
	}
	enrolled := map[string]bool{}
	if s.opts.Roster != nil {
		list, err := s.opts.Roster.Enrolled(ctx, program, w.Start(v.loc), w.End(v.loc))
		if err != nil {
			return nil, fmt.Errorf("read roster: %w", err)
		}
		for _, sub := range list {
			enrolled[sub], seen[sub] = true, true
		}
	}
	rep := &ProgramWeekReport{Program: program, Week: w, Zone: v.loc.String(), People: []*WeekReport{}}
	for sub := range seen {
		r, err := s.personWeek(ctx, v, sub, w)
		if err != nil {
			return nil, err
		}
		if r.Role == "" && enrolled[sub] {
			r.Role = rooms.RoleClient
		}
		rep.People = append(rep.People, r)
	}
	sort.Slice(rep.People, func(i, j int) bool {
		a, b := rep.People[i], rep.People[j]
		if roleOrder(a.Role) != roleOrder(b.Role) {
			return roleOrder(a.Role) < roleOrder(b.Role)
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Sub < b.Sub
	})
	return rep, nil
}

func roleOrder(r rooms.Role) int {
	switch r {
	case rooms.RoleClient:
		return 0
	case rooms.RoleFamily:
		return 1
	case rooms.RoleTherapist:
		return 2
	case rooms.RoleStaff:
		return 3
	}
	return 4
}

// Day returns one person's local day from the day rollup, open segments
// counted up to now.
func (s *Store) Day(ctx context.Context, program, sub string, d Date) (DayLine, error) {
	v, err := s.view(ctx, program)
	if err != nil {
		return DayLine{}, err
	}
	t, _, err := s.readTotals(ctx, v.gp+dayKey(sub, d))
	if err != nil {
		return DayLine{}, err
	}
	open, err := s.openSegments(ctx, v)
	if err != nil {
		return DayLine{}, err
	}
	for _, seg := range open {
		if seg.Sub != sub {
			continue
		}
		for _, p := range seg.piecesBetween(v.loc, seg.Counted, v.now) {
			if p.Date == d {
				t.add(seg.Room, p)
			}
		}
	}
	return DayLine{
		Date: d, Seconds: t.Seconds, VideoSeconds: t.VideoSeconds, Minutes: Minutes(t.Seconds),
		VideoMinutes: Minutes(t.VideoSeconds), Sessions: t.Sessions(),
		Billable: time.Duration(t.Seconds)*time.Second >= s.opts.Rules.BillableDay,
	}, nil
}

// Room returns the roster of a session: each person's segments with their
// seconds (open ones up to now) and modality, and the totals.
func (s *Store) Room(ctx context.Context, program, room string) (*RoomReport, error) {
	v, err := s.view(ctx, program)
	if err != nil {
		return nil, err
	}
	ids, err := s.rdb.SMembers(ctx, v.gp+roomKey(room)).Result()
	if err != nil {
		return nil, fmt.Errorf("read room segments: %w", err)
	}
	segs, err := s.segments(ctx, v, ids)
	if err != nil {
		return nil, err
	}
	rep := &RoomReport{Program: program, Zone: v.loc.String(), Room: RoomRef{ID: room}, People: []*RoomPerson{}}
	bySub := map[string]*RoomPerson{}
	for _, seg := range segs {
		if rep.Room.Kind == "" {
			rep.Room.Kind, rep.Room.Title = seg.Kind, seg.Title
		}
		p := bySub[seg.Sub]
		if p == nil {
			p = &RoomPerson{Sub: seg.Sub, Name: seg.Name, Role: seg.Role, Segments: []SegmentLine{}}
			bySub[seg.Sub] = p
			rep.People = append(rep.People, p)
		}
		a := seg.Measure(v.now)
		l := SegmentLine{
			ID: seg.ID, Start: seg.Start, StartLocal: localTime(seg.Start, v.loc),
			Seconds: a.Seconds, VideoSeconds: a.VideoSeconds, Modality: seg.Modality(v.now),
			Reason: seg.Reason, Gaps: seg.Gaps,
		}
		if !seg.Open() {
			end, el := seg.End, localTime(seg.End, v.loc)
			l.End, l.EndLocal = &end, &el
		}
		p.Segments = append(p.Segments, l)
		p.Seconds += a.Seconds
		p.VideoSeconds += a.VideoSeconds
		rep.Seconds += a.Seconds
		rep.VideoSeconds += a.VideoSeconds
	}
	for _, p := range rep.People {
		p.Minutes, p.VideoMinutes = Minutes(p.Seconds), Minutes(p.VideoSeconds)
	}
	return rep, nil
}

// localTime writes t in RFC 3339 with the offset of loc.
func localTime(t time.Time, loc *time.Location) string { return t.In(loc).Format(time.RFC3339) }

// CSVHeader is the header of the billing export (docs/api.md, the
// program week's .csv).
const CSVHeader = "sub,name,role,room,kind,date_local,start_utc,end_utc,start_local,end_local,seconds,video_seconds,modality"

// Row is one line of the billing export: the part of one segment that
// falls on one local date.
type Row struct {
	Sub          string
	Name         string
	Role         rooms.Role
	Room         string
	Kind         rooms.Kind
	Date         Date
	Start        time.Time // in the program's zone (the local columns use it)
	End          time.Time // zero while the segment is open
	Seconds      int64
	VideoSeconds int64
	Modality     Modality // held for the most seconds of the row
}

// WriteCSV writes rows under CSVHeader. Times are RFC 3339: UTC in the
// _utc columns, the rows' own zone in the _local ones; an open segment's
// end columns are empty. A cell a spreadsheet would run as a formula (a
// display name such as "=HYPERLINK(...)") is written with a single quote
// in front (package spreadsheet); numbers, dates and times never are.
func WriteCSV(w io.Writer, rows []Row) error {
	cw := spreadsheet.NewWriter(w)
	if err := cw.Write(strings.Split(CSVHeader, ",")); err != nil {
		return err
	}
	for _, r := range rows {
		var endUTC, endLocal string
		if !r.End.IsZero() {
			endUTC, endLocal = r.End.UTC().Format(time.RFC3339), r.End.Format(time.RFC3339)
		}
		rec := []string{
			r.Sub, r.Name, string(r.Role), r.Room, string(r.Kind), r.Date.String(),
			r.Start.UTC().Format(time.RFC3339), endUTC, r.Start.Format(time.RFC3339), endLocal,
			strconv.FormatInt(r.Seconds, 10), strconv.FormatInt(r.VideoSeconds, 10), string(r.Modality),
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	return cw.Flush()
}

// WeekRows returns the billing rows of a program's ISO week: one per
// segment and local date in the week, ordered by start, sub and room.
func (s *Store) WeekRows(ctx context.Context, program string, w Week) ([]Row, error) {
	v, err := s.view(ctx, program)
	if err != nil {
		return nil, err
	}
	segs, err := s.weekSegments(ctx, v, weekSegsKey(w), "")
	if err != nil {
		return nil, err
	}
	rows := []Row{}
	for _, seg := range segs {
		for _, p := range seg.Pieces(v.loc, v.now) {
			if !w.Contains(p.Date) {
				continue
			}
			r := Row{
				Sub: seg.Sub, Name: seg.Name, Role: seg.Role, Room: seg.Room, Kind: seg.Kind, Date: p.Date,
				Start: p.Start.In(v.loc), End: p.End.In(v.loc), Seconds: p.Seconds, VideoSeconds: p.VideoSeconds,
				Modality: p.Modality(),
			}
			if seg.Open() && p.End.Equal(v.now) {
				r.End = time.Time{}
			}
			rows = append(rows, r)
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if !a.Start.Equal(b.Start) {
			return a.Start.Before(b.Start)
		}
		if a.Sub != b.Sub {
			return a.Sub < b.Sub
		}
		return a.Room < b.Room
	})
	return rows, nil
}

// ExportWeek writes a program's ISO week as the billing CSV, its chain
// head on the last line.
func (s *Store) ExportWeek(ctx context.Context, w io.Writer, program string, week Week) error {
	x, err := s.WeekExport(ctx, program, week)
	if err != nil {
		return err
	}
	return x.WriteCSV(w)
}

// Export is a billing export: its rows and the chain head they were read
// at.
type Export struct {
	Rows []Row
	Head ChainHead
}

// WeekExport returns the billing rows of a program's ISO week (WeekRows)
// and the program's chain head read after them: every event the rows count
// is in the chain up to that head.
func (s *Store) WeekExport(ctx context.Context, program string, w Week) (*Export, error) {
	rows, err := s.WeekRows(ctx, program, w)
	if err != nil {
		return nil, err
	}
	h, err := s.Head(ctx, program)
	if err != nil {
		return nil, err
	}
	return &Export{Rows: rows, Head: h}, nil
}

// CSVHeadPrefix starts the billing CSV's last line: a comment that gives
// the chain head the rows were read at (ChainHead.String), in its first
// cell, the other cells empty so that every line has the header's columns.
// CSV readers that know comments skip it (pandas comment="#", Go's
// csv.Reader Comment '#'); a spreadsheet shows it as the last row.
const CSVHeadPrefix = "# iop attendance "

// WriteCSV writes the export's rows under CSVHeader (WriteCSV), then the
// chain head line (CSVHeadPrefix).
func (x *Export) WriteCSV(w io.Writer) error {
	cw := spreadsheet.NewWriter(w)
	if err := WriteCSV(w, x.Rows); err != nil {
		return err
	}
	rec := make([]string, strings.Count(CSVHeader, ",")+1)
	rec[0] = CSVHeadPrefix + x.Head.String()
	if err := cw.Write(rec); err != nil {
		return err
	}
	return cw.Flush()
}
