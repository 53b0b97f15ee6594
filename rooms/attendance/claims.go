package attendance

import (
	"context"
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

// BillingHeader is the header of the billing export, one line per client
// per local date of service (docs/api.md, column by column).
const BillingHeader = "date_local,program,client,name,clinicians,session_types,sessions,codes,place_of_service,modifier," +
	"direct_seconds,no_clinician_seconds,video_seconds,audio_only_seconds,no_media_seconds,billable," +
	"group_sizes,late,left_early,absences"

// BillingLine is one client's local date of service: what a biller needs
// to write a claim line, and the evidence beside it.
type BillingLine struct {
	Date    Date
	Program string
	Client  string // sub
	Name    string
	// Clinicians are the therapists of the program admitted in a room
	// while the client was there (the rendering clinicians), by sub.
	Clinicians []string
	// SessionTypes are the kinds of the sessions attended that day.
	SessionTypes []rooms.Kind
	// Sessions are the sessions (rooms) the client was in that day.
	Sessions []string
	// Codes are the service codes the day supports: the per-diem code of
	// a billable day, then one code per session that counts (see
	// Store.BillingWeek).
	Codes          []string
	PlaceOfService string
	// Modifier is the telehealth modifier of the day's predominant
	// modality: Billing.VideoModifier, AudioModifier, or "" without media.
	Modifier string
	Amount
	Billable bool // direct service reached Rules.BillableDay
	// GroupSizes are, per group session, how many clients were in it
	// while this client was.
	GroupSizes map[string]int
	// Late and LeftEarly are the scheduled sessions the policy flagged.
	Late, LeftEarly []string
	// Absences are the recorded reasons for the day's scheduled sessions
	// the client did not attend, by session.
	Absences map[string]AbsenceReason
}

// BillingExport is a program's billing lines for a range of dates and the
// chain head they were read at.
type BillingExport struct {
	Range DateRange
	Lines []BillingLine
	Head  ChainHead
}

// ChainHead is the chain head the lines were read at.
func (x *BillingExport) ChainHead() ChainHead { return x.Head }

// BillingWeek returns the billing lines of a program's ISO week
// (BillingRange of its Monday to Sunday).
func (s *Store) BillingWeek(ctx context.Context, program string, w Week) (*BillingExport, error) {
	return s.BillingRange(ctx, program, WeekRange(w))
}

// BillingRange returns the billing lines of a program's local dates r
// (at most MaxRangeDays; ErrRange otherwise): one per client (role client)
// per local date on which they were present, had an absence recorded, or
// their family attended a family session booked for them, in date and
// client order, and the chain head read after them.
//
// The day's per-diem code (Billing.DayCode) is listed when its direct
// service reaches Rules.BillableDay. A session adds its own code when it
// counts: a scheduled session when the policy judges it attended, an
// unscheduled one when it has any direct service; a group, complementary
// or support session adds GroupCode, an individual one the
// IndividualCodes entry its direct time reaches (none below the
// shortest), a family session FamilyCode when a family member was there
// with the client (none for the client alone, or when they came at
// different times); a scheduled family session the family attended by the
// policy counts with the client there for part of it (the patient present
// for all or part of the service). A scheduled family session
// the client missed adds FamilyWithoutClientCode to the client's line of
// its date when a family member attended it by the policy; its seconds
// are the family's and stay out of the client's. The modifier follows the
// media of the direct-service seconds. Open segments count up to now.
func (s *Store) BillingRange(ctx context.Context, program string, r DateRange) (*BillingExport, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	v, err := s.view(ctx, program)
	if err != nil {
		return nil, err
	}
	pol, err := s.policy(ctx, program)
	if err != nil {
		return nil, err
	}
	bill := DefaultBilling()
	if s.opts.Programs != nil {
		b, err := s.opts.Programs.Billing(ctx, program)
		if err != nil {
			return nil, fmt.Errorf("read billing settings: %w", err)
		}
		bill = b.WithDefaults()
	}
	var segs []*Segment
	have := map[string]bool{}
	for _, w := range r.Weeks() {
		got, err := s.weekSegments(ctx, v, weekSegsKey(w), "")
		if err != nil {
			return nil, err
		}
		for _, seg := range got {
			if !have[seg.ID] {
				have[seg.ID] = true
				segs = append(segs, seg)
			}
		}
	}
	byRoom := map[string][]*Segment{}
	bySub := map[string][]*Segment{}
	for _, seg := range segs {
		byRoom[seg.Room] = append(byRoom[seg.Room], seg)
		if seg.Role == rooms.RoleClient {
			bySub[seg.Sub] = append(bySub[seg.Sub], seg)
		}
	}
	clients := map[string]bool{}
	for sub := range bySub {
		clients[sub] = true
	}
	if s.opts.Roster != nil {
		list, err := s.opts.Roster.Enrolled(ctx, program, r.Start(v.loc), r.End(v.loc))
		if err != nil {
			return nil, fmt.Errorf("read roster: %w", err)
		}
		for _, sub := range list {
			clients[sub] = true
		}
	}
	var lines []BillingLine
	for sub := range clients {
		got, err := s.clientLines(ctx, v, r, sub, bySub[sub], byRoom, pol, bill)
		if err != nil {
			return nil, err
		}
		lines = append(lines, got...)
	}
	sort.Slice(lines, func(i, j int) bool {
		if lines[i].Date != lines[j].Date {
			return lines[i].Date.Before(lines[j].Date)
		}
		return lines[i].Client < lines[j].Client
	})
	h, err := s.Head(ctx, program)
	if err != nil {
		return nil, err
	}
	return &BillingExport{Range: r, Lines: lines, Head: h}, nil
}

// clientLines builds one client's lines of the range.
func (s *Store) clientLines(ctx context.Context, v *view, rg DateRange, sub string, mine []*Segment,
	byRoom map[string][]*Segment, pol Policy, bill Billing) ([]BillingLine, error) {
	type room struct {
		kind       rooms.Kind
		amt        Amount
		withFamily bool // a family member was there with the client
		code       string
	}
	type day struct {
		line   *BillingLine
		direct Amount // the direct service by media: the modifier's
		rooms  map[string]*room
		order  []string
	}
	days := map[Date]*day{}
	get := func(d Date) *day {
		if days[d] == nil {
			days[d] = &day{rooms: map[string]*room{}, line: &BillingLine{
				Date: d, Program: v.program, Client: sub, PlaceOfService: bill.place(sub),
				GroupSizes: map[string]int{}, Absences: map[string]AbsenceReason{},
			}}
		}
		return days[d]
	}
	for _, seg := range mine {
		for _, p := range seg.Pieces(v.loc, v.now) {
			if !rg.Contains(p.Date) {
				continue
			}
			dy := get(p.Date)
			if dy.line.Name == "" {
				dy.line.Name = seg.Name
			}
			dy.line.Amount = dy.line.Amount.Add(p.Amount)
			dy.direct = dy.direct.Add(seg.directAmount(p.Start, p.End))
			r := dy.rooms[seg.Room]
			if r == nil {
				r = &room{kind: seg.Kind}
				dy.rooms[seg.Room] = r
				dy.order = append(dy.order, seg.Room)
			}
			r.amt = r.amt.Add(p.Amount)
			for _, o := range byRoom[seg.Room] {
				switch {
				case o.Role == rooms.RoleTherapist && overlaps(o, p.Start, p.End, v.now):
					dy.line.Clinicians = appendOnce(dy.line.Clinicians, o.Sub)
				case o.Role == rooms.RoleFamily && overlaps(o, p.Start, p.End, v.now):
					r.withFamily = true
				}
			}
			if groupKind(seg.Kind) {
				n := 0
				seen := map[string]bool{}
				for _, o := range byRoom[seg.Room] {
					if o.Role == rooms.RoleClient && !seen[o.Sub] && overlaps(o, p.Start, p.End, v.now) {
						seen[o.Sub] = true
						n++
					}
				}
				dy.line.GroupSizes[seg.Room] = max(dy.line.GroupSizes[seg.Room], n)
			}
		}
	}

	// The schedule: which sessions count, late and early flags, absences,
	// family sessions the family attended without the client.
	judged := map[string]*SessionAttendance{}
	expected := map[string]Expected{}
	if s.opts.Schedule != nil {
		exp, err := s.opts.Schedule.Expected(ctx, v.program, sub, rg.Start(v.loc), rg.End(v.loc))
		if err != nil && !errors.Is(err, ErrNoSchedule) {
			return nil, fmt.Errorf("read schedule: %w", err)
		}
		reasons, err := s.absences(ctx, v, sub)
		if err != nil {
			return nil, err
		}
		for _, x := range sortedExpected(exp) {
			a := pol.Judge(x, mine, v.now)
			judged[x.Room], expected[x.Room] = &a, x
			d := DateOf(x.Start, v.loc)
			if a.Late || a.LeftEarly {
				dy := get(d)
				if a.Late {
					dy.line.Late = append(dy.line.Late, x.Room)
				}
				if a.LeftEarly {
					dy.line.LeftEarly = append(dy.line.LeftEarly, x.Room)
				}
			}
			if r := reasons[x.Room].Reason; r != "" && !a.Attended {
				get(d).line.Absences[x.Room] = r
			}
			if x.Kind != rooms.KindFamily || a.Seconds > 0 || !rg.Contains(d) {
				continue
			}
			fam, ok := familyAttended(x, byRoom[x.Room], pol, v.now)
			if !ok {
				continue
			}
			dy := get(d)
			if dy.rooms[x.Room] == nil {
				dy.rooms[x.Room] = &room{kind: rooms.KindFamily}
				dy.order = append(dy.order, x.Room)
			}
			dy.rooms[x.Room].code = bill.FamilyWithoutClientCode
			if dy.direct.DirectSeconds == 0 {
				dy.direct = fam.direct
			}
			for _, c := range fam.clinicians {
				dy.line.Clinicians = appendOnce(dy.line.Clinicians, c)
			}
		}
	}

	name := ""
	for _, seg := range mine {
		if name == "" {
			name = seg.Name
		}
	}
	var out []BillingLine
	for _, dy := range days {
		l := dy.line
		if l.Name == "" {
			l.Name = name // a line without the client's presence (an absence, their family)
		}
		l.Billable = billableDay(l.Amount, s.opts.Rules.BillableDay)
		if l.Billable {
			l.Codes = append(l.Codes, bill.DayCode)
		}
		for _, id := range dy.order {
			r := dy.rooms[id]
			l.Sessions = append(l.Sessions, id)
			l.SessionTypes = appendKind(l.SessionTypes, r.kind)
			if r.code != "" {
				l.Codes = append(l.Codes, r.code)
				continue
			}
			counts := r.amt.DirectSeconds > 0
			if a := judged[id]; a != nil {
				counts = a.Attended
			}
			code := bill.sessionCode(r.kind, r.amt)
			switch {
			case r.kind != rooms.KindFamily:
			case !r.withFamily:
				code = "" // the client alone: not family psychotherapy
			case !counts && judged[id] != nil:
				// With the patient present for part of a scheduled family
				// session the family attended: still 90847.
				_, counts = familyAttended(expected[id], byRoom[id], pol, v.now)
			}
			if counts && code != "" {
				l.Codes = append(l.Codes, code)
			}
		}
		// The modifier says how the billed (direct) service was given.
		if dy.direct.DirectSeconds > 0 {
			switch dy.direct.Modality() {
			case ModalityVideo:
				l.Modifier = bill.VideoModifier
			case ModalityAudioOnly:
				l.Modifier = bill.AudioModifier
			}
		}
		sort.Strings(l.Clinicians)
		out = append(out, *l)
	}
	return out, nil
}

// family is a family's attendance of a session the client missed.
type family struct {
	direct     Amount   // the attending member's direct service by media
	clinicians []string // therapists there with the family
}

// familyAttended reports whether a family member (role family) attended
// the scheduled family session x by the policy, from the room's segments:
// the member with the most direct service inside the window.
func familyAttended(x Expected, room []*Segment, pol Policy, now time.Time) (family, bool) {
	bySub := map[string][]*Segment{}
	for _, seg := range room {
		if seg.Role == rooms.RoleFamily {
			bySub[seg.Sub] = append(bySub[seg.Sub], seg)
		}
	}
	var best family
	var bestSeconds int64
	for _, segs := range bySub {
		a := pol.Judge(x, segs, now)
		if !a.Attended || a.Seconds <= bestSeconds {
			continue
		}
		bestSeconds = a.Seconds
		f := family{}
		for _, seg := range segs {
			from, to := maxTime(seg.Start, x.Start), minTime(seg.until(now), minTime(x.End, now))
			if !to.After(from) {
				continue
			}
			f.direct = f.direct.Add(seg.directAmount(from, to))
			for _, o := range room {
				if o.Role == rooms.RoleTherapist && overlaps(o, from, to, now) {
					f.clinicians = appendOnce(f.clinicians, o.Sub)
				}
			}
		}
		best = f
	}
	return best, bestSeconds > 0
}

// sessionCode is the code a counted session of kind adds.
func (b Billing) sessionCode(kind rooms.Kind, a Amount) string {
	switch {
	case groupKind(kind):
		return b.GroupCode
	case kind == rooms.KindFamily:
		return b.FamilyCode
	case kind == rooms.KindIndividual:
		return b.individualCode(time.Duration(a.DirectSeconds) * time.Second)
	}
	return ""
}

func groupKind(k rooms.Kind) bool {
	return k == rooms.KindGroup || k == rooms.KindComplementary || k == rooms.KindSupport
}

// overlaps reports whether seg was present at some time in [from, to).
func overlaps(seg *Segment, from, to, now time.Time) bool {
	a, b := maxTime(seg.Start, from), minTime(seg.until(now), to)
	return b.After(a) && seg.presentIn(a, b) > 0
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func appendKind(list []rooms.Kind, k rooms.Kind) []rooms.Kind {
	for _, x := range list {
		if x == k {
			return list
		}
	}
	return append(list, k)
}

// WriteCSV writes the lines under BillingHeader, then the chain head line
// (CSVHeadPrefix) as the segment CSV does. Lists are joined with ";", maps
// written "session:value" in session order; cells a spreadsheet would run
// as formulas (a display name) are neutralised (package spreadsheet).
func (x *BillingExport) WriteCSV(w io.Writer) error {
	cw := spreadsheet.NewWriter(w)
	header := strings.Split(BillingHeader, ",")
	if err := cw.Write(header); err != nil {
		return err
	}
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	for _, l := range x.Lines {
		kinds := make([]string, len(l.SessionTypes))
		for i, k := range l.SessionTypes {
			kinds[i] = string(k)
		}
		b := l.Amount.Breakdown()
		rec := []string{
			l.Date.String(), l.Program, l.Client, l.Name, strings.Join(l.Clinicians, ";"), strings.Join(kinds, ";"),
			strings.Join(l.Sessions, ";"), strings.Join(l.Codes, ";"), l.PlaceOfService, l.Modifier,
			n(b.DirectSeconds), n(b.NoClinicianSeconds), n(l.VideoSeconds), n(b.AudioOnlySeconds), n(b.NoMediaSeconds),
			strconv.FormatBool(l.Billable), pairs(l.GroupSizes, strconv.Itoa), strings.Join(l.Late, ";"),
			strings.Join(l.LeftEarly, ";"), pairs(l.Absences, func(r AbsenceReason) string { return string(r) }),
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	rec := make([]string, len(header))
	rec[0] = CSVHeadPrefix + x.Head.String()
	if err := cw.Write(rec); err != nil {
		return err
	}
	return cw.Flush()
}

// pairs writes a map as "key:value;..." in key order.
func pairs[V any](m map[string]V, str func(V) string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + ":" + str(m[k])
	}
	return strings.Join(out, ";")
}
