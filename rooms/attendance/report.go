package attendance

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"iop/rooms"
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

	Seconds      int64 `json:"seconds"`
	VideoSeconds int64 `json:"video_seconds"`
	Breakdown
	Minutes          int64 `json:"minutes"`
	VideoMinutes     int64 `json:"video_minutes"`
	Days             int   `json:"days"`          // local days with any attendance
	DaysCounted      int   `json:"days_counted"`  // local days reaching the policy's day minimum: toward TargetDays
	BillableDays     int   `json:"billable_days"` // local days with at least Rules.BillableDay
	SessionsAttended int   `json:"sessions_attended"`

	// Clients only: targets, status and absences.
	TargetHours float64    `json:"target_hours,omitempty"`
	TargetDays  int        `json:"target_days,omitempty"`
	Status      Status     `json:"status,omitempty"`
	Absences    int        `json:"absences"`         // expected sessions of the week missed so far
	Missed      []Expected `json:"missed,omitempty"` // those sessions
	// Scheduled is each expected session of the week as the program's
	// policy judges it: attended, late, left early, absence reason.
	Scheduled []SessionAttendance `json:"scheduled,omitempty"`
	Flags     []Flag              `json:"flags,omitempty"` // absence patterns as of the week's end (or now)

	Live     bool          `json:"live"` // an open segment is counted up to now
	Daily    []DayLine     `json:"daily"`
	Sessions []SessionLine `json:"sessions"`
}

// DayLine is one local day of a person's attendance.
type DayLine struct {
	Date         Date  `json:"date_local"`
	Seconds      int64 `json:"seconds"`
	VideoSeconds int64 `json:"video_seconds"`
	Breakdown
	Minutes      int64 `json:"minutes"`
	VideoMinutes int64 `json:"video_minutes"`
	Sessions     int   `json:"sessions"`
	Billable     bool  `json:"billable"`
	Counts       bool  `json:"counts"` // reaches the policy's day minimum (counts toward the target days)
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
	Breakdown
	Minutes      int64    `json:"minutes"`
	VideoMinutes int64    `json:"video_minutes"`
	Modality     Modality `json:"modality"`
}

// ProgramWeekReport is everyone's week in a program: docs/api.md's
// GET /v1/attendance/programs/{program}/weeks/{yyyy-Www}.
type ProgramWeekReport struct {
	Program string        `json:"program"`
	Week    Week          `json:"week"`
	Zone    string        `json:"zone"`
	People  []*WeekReport `json:"people"`
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

// segments reads segments by id, skipping unknown ones, by start.
func (s *Store) segments(ctx context.Context, v *view, ids []string) ([]*Segment, error) {
	out, err := readSegments(ctx, s.rdb, v.gp, ids)
	if err != nil {
		return nil, err
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
		case f == "direct_seconds":
			t.DirectSeconds = n
		case strings.HasPrefix(f, "r:"):
			amount(t.Rooms, f[2:], func(a *Amount) { a.Seconds = n })
		case strings.HasPrefix(f, "rv:"):
			amount(t.Rooms, f[3:], func(a *Amount) { a.VideoSeconds = n })
		case strings.HasPrefix(f, "ra:"):
			amount(t.Rooms, f[3:], func(a *Amount) { a.AudioSeconds = n })
		case strings.HasPrefix(f, "rd:"):
			amount(t.Rooms, f[3:], func(a *Amount) { a.DirectSeconds = n })
		case strings.HasPrefix(f, "d:"), strings.HasPrefix(f, "dv:"), strings.HasPrefix(f, "da:"), strings.HasPrefix(f, "dd:"):
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
			case "dd":
				a.DirectSeconds = n
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
	pol, err := s.policy(ctx, v.program)
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
	r.Seconds, r.VideoSeconds, r.Breakdown = t.Seconds, t.VideoSeconds, t.Amount.Breakdown()
	r.Minutes, r.VideoMinutes = Minutes(t.Seconds), Minutes(t.VideoSeconds)
	r.Days, r.BillableDays, r.SessionsAttended = t.DaysAttended(), t.BillableDays(s.opts.Rules.BillableDay), t.Sessions()
	r.DaysCounted = t.DaysReaching(pol.DayMinimum)
	r.Daily, r.Sessions = dayLines(v, segs, t, s.opts.Rules.BillableDay, pol.DayMinimum), sessionLines(v, w, segs, t)

	if r.Role == rooms.RoleClient || r.Role == "" {
		if err := s.clientWeek(ctx, v, r, t, segs, pol); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// dayLines lists the attended local days of a week's totals, with the
// number of sessions the segments show on each.
func dayLines(v *view, segs []*Segment, t *Totals, billable, dayMinimum time.Duration) []DayLine {
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
			Date: d, Seconds: a.Seconds, VideoSeconds: a.VideoSeconds, Breakdown: a.Breakdown(), Sessions: len(sessions[d]),
			Minutes: Minutes(a.Seconds), VideoMinutes: Minutes(a.VideoSeconds),
			Billable: billableDay(a, billable),
			Counts:   billableDay(a, dayMinimum),
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
		l.Seconds, l.VideoSeconds, l.Breakdown = amt.Seconds, amt.VideoSeconds, amt.Breakdown()
		l.Minutes, l.VideoMinutes = Minutes(amt.Seconds), Minutes(amt.VideoSeconds)
		l.Modality = amt.Modality()
		out = append(out, l)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// clientWeek adds a client's targets, status, the week's scheduled
// sessions judged by the policy, absences and flags.
func (s *Store) clientWeek(ctx context.Context, v *view, r *WeekReport, t *Totals, segs []*Segment, pol Policy) error {
	targets, err := s.TargetsOf(ctx, v.program, r.Sub)
	if err != nil {
		return err
	}
	r.TargetHours, r.TargetDays = targets.Hours, targets.Days
	in := StatusInput{Now: v.now, Loc: v.loc, Week: r.Week, Totals: t, Targets: targets, MaxDaily: s.opts.Rules.MaxDaily, DayMinimum: pol.DayMinimum}
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
	reasons, err := s.absences(ctx, v, r.Sub)
	if err != nil {
		return err
	}
	// A session the program cancelled for this client is not expected of
	// them: no absence, no flag, no hours still to come.
	exp = notCancelled(exp, reasons)
	in.Scheduled, in.Expected = true, exp
	r.Status = WeeklyStatus(in)
	attended := map[string]bool{}
	for _, x := range sortedExpected(exp) {
		a := pol.Judge(x, segs, v.now)
		a.Absence = reasons[x.Room].Reason
		r.Scheduled = append(r.Scheduled, a)
		attended[x.Room] = a.Attended
	}
	r.Missed = Absences(exp, attended, v.now)
	r.Absences = len(r.Missed)

	// Flags look back Window weeks from the week's end (or now). Earlier
	// weeks are judged from their rollups: the session's seconds against
	// the share of its length.
	at := minTime(end, v.now)
	p := s.opts.Rules.Absences
	from := at.AddDate(0, 0, -7*p.Window)
	window, err := s.opts.Schedule.Expected(ctx, v.program, r.Sub, from, at)
	if err != nil {
		return fmt.Errorf("read schedule: %w", err)
	}
	window = notCancelled(window, reasons)
	needed := map[string]int64{}
	for _, x := range window {
		needed[x.Room] = pol.Judge(x, nil, x.End).Needed
	}
	for wk := WeekOf(from, v.loc); !wk.Start(v.loc).After(at) && wk != r.Week; wk = wk.Add(1) {
		past, _, err := s.readTotals(ctx, v.gp+weekKey(r.Sub, wk))
		if err != nil {
			return err
		}
		for room, a := range past.Rooms {
			attended[room] = attended[room] || (a.DirectSeconds > 0 && a.DirectSeconds >= needed[room])
		}
	}
	r.Flags = AbsenceFlags(window, attended, at, p)
	return nil
}

// notCancelled drops the sessions whose recorded absence reason is that
// the program cancelled them.
func notCancelled(exp []Expected, reasons map[string]Absence) []Expected {
	out := exp[:0:0]
	for _, x := range exp {
		if reasons[x.Room].Reason != AbsenceCancelled {
			out = append(out, x)
		}
	}
	return out
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

// localTime writes t in RFC 3339 with the offset of loc.
func localTime(t time.Time, loc *time.Location) string { return t.In(loc).Format(time.RFC3339) }
