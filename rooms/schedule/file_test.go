package schedule

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestExampleContents: the example has what dev mode shows: a day and an
// evening track, a complementary session, a support group, a cohort group,
// holidays and the demo clients.
func TestExampleContents(t *testing.T) {
	s := example(t)
	p := &s.Program
	if p.Name != "Example IOP" || p.TimeZone != "America/New_York" || len(p.Tracks) != 2 || p.Tracks[0].ID != "day" || p.Tracks[1].ID != "evening" {
		t.Errorf("program %s %q in %s with tracks %v", p.ID, p.Name, p.TimeZone, p.trackList())
	}
	kinds := map[string]bool{}
	cohort := false
	for _, rs := range p.all() {
		kinds[string(rs.Kind)] = true
		cohort = cohort || rs.Cohort != ""
	}
	if !kinds["group"] || !kinds["complementary"] || !kinds["support"] || !cohort || len(p.Holidays) == 0 {
		t.Errorf("kinds %v, a cohort group %v, %d holidays", kinds, cohort, len(p.Holidays))
	}
	for _, sub := range []string{"demo-client-1", "demo-client-2", "demo-client-3"} {
		if s.Enrollment(sub) == nil {
			t.Errorf("%s is not enrolled", sub)
		}
	}
}

// TestLoadYAMLRefuses: a file with a mistake is refused with a message
// that names it.
func TestLoadYAMLRefuses(t *testing.T) {
	cases := []struct {
		name, from, to, says string
	}{
		{"a typo in a field name", "join_grace: 15m", "join_grase: 15m", "join_grase"},
		{"a bad time of day", `start: "09:00"`, `start: "9am"`, `"9am"`},
		{"a bad weekday", "weekdays: [mon, wed, fri]", "weekdays: [mon, wed, fry]", `"fry"`},
		{"a bad length", "length: 1h", "length: an hour", `"an hour"`},
		{"a bad date", "- 2026-05-25", "- 2026-05-32", `"2026-05-32"`},
		{"an unknown track", "track: evening\n    start: 2026-01-06", "track: night\n    start: 2026-01-06", `unknown track "night"`},
		{"a cap above the maximum", "cap: 12", "cap: 30", "cap 30 is above the complementary maximum of 15"},
		{"weekly hours of partial hospitalization", "target_hours: 9", "target_hours: 20", "target_hours 20"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := strings.Replace(string(Example), c.from, c.to, 1)
			if doc == string(Example) {
				t.Fatalf("%q is not in the example", c.from)
			}
			_, err := LoadYAML(strings.NewReader(doc))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.says) {
				t.Errorf("got %v\nwant ErrInvalid saying %q", err, c.says)
			}
		})
	}
	if _, err := LoadYAML(strings.NewReader("")); !errors.Is(err, ErrInvalid) {
		t.Errorf("an empty file: %v", err)
	}
}

// TestLoadYAMLBookings: bookings in a file get stable ids, and clashing
// ones are refused.
func TestLoadYAMLBookings(t *testing.T) {
	booking := `
bookings:
  - kind: individual
    start: 2026-12-01T14:00:00-05:00
    length: 50m
    client: demo-client-1
    therapist: demo-therapist
`
	f1, err := LoadYAML(strings.NewReader(string(Example) + booking))
	if err != nil {
		t.Fatal(err)
	}
	f2, _ := LoadYAML(strings.NewReader(string(Example) + booking))
	if id := f1.Bookings[0].ID; !strings.HasPrefix(id, "example-b") || id != f2.Bookings[0].ID {
		t.Errorf("seeded booking ids %q and %q: want one stable id", id, f2.Bookings[0].ID)
	}
	s, _ := f1.Schedule(nil)
	if o, err := s.Find(f1.Bookings[0].ID); err != nil || !o.Start.Equal(utc(t, "2026-12-01T19:00Z")) {
		t.Errorf("the booking's occurrence: %+v, %v", o, err)
	}
	clash := strings.Replace(booking, "2026-12-01T14:00:00-05:00", "2026-11-30T09:30:00-05:00", 1)
	if _, err := LoadYAML(strings.NewReader(string(Example) + clash)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "is in example-day-relapse-prevention-20261130") {
		t.Errorf("a booking during the client's group: %v", err)
	}
}

// TestTextForms: dates, times of day, durations and weekdays read and
// write as the YAML and JSON forms say.
func TestTextForms(t *testing.T) {
	for _, c := range []struct {
		in, out string
		ok      bool
	}{
		{"2026-03-08", "2026-03-08", true}, {"2026-02-29", "", false}, {"2026-3-8", "", false}, {"", "", true},
	} {
		var d Date
		err := d.UnmarshalText([]byte(c.in))
		if (err == nil) != c.ok || (c.ok && d.String() != c.out) {
			t.Errorf("date %q: %v, %v", c.in, d, err)
		}
	}
	for _, c := range []struct {
		in string
		ok bool
	}{{"09:00", true}, {"23:59", true}, {"00:00", true}, {"24:00", false}, {"9:00", false}, {"09:60", false}, {"0900", false}} {
		var x Clock
		err := x.UnmarshalText([]byte(c.in))
		if (err == nil) != c.ok || (c.ok && x.String() != c.in) {
			t.Errorf("clock %q: %v, %v", c.in, x, err)
		}
	}
	for in, out := range map[string]string{"1h": "1h", "60m": "1h", "45m": "45m", "1h30m": "1h30m", "90s": "1m30s", "2h0m": "2h"} {
		var d Duration
		if err := d.UnmarshalText([]byte(in)); err != nil || d.String() != out {
			t.Errorf("duration %q reads back as %q (%v), want %q", in, d, err, out)
		}
	}
	for in, out := range map[string]Weekday{"mon": 1, "Monday": 1, "SUN": 0, "sat": 6, "thursday": 4} {
		var w Weekday
		if err := w.UnmarshalText([]byte(in)); err != nil || w != out {
			t.Errorf("weekday %q: %v, %v", in, w, err)
		}
	}
	var w Weekday
	if err := w.UnmarshalText([]byte("fry")); err == nil {
		t.Error("weekday fry accepted")
	}

	// JSON, as stored in Redis and served by the API.
	e := Enrollment{Sub: "c", Program: "p", Track: "day", Start: Date{Year: 2026, Month: 3, Day: 2},
		Changes: []TrackChange{{Track: "evening", Effective: Date{Year: 2026, Month: 4, Day: 6}}}}
	b, _ := json.Marshal(e)
	want := `{"sub":"c","program":"p","track":"day","start":"2026-03-02","changes":[{"track":"evening","effective":"2026-04-06"}]}`
	if string(b) != want {
		t.Errorf("enrollment JSON:\n got %s\nwant %s", b, want)
	}
	rs := RecurringSession{ID: "x", Title: "X", Kind: "group", Weekdays: []Weekday{1, 3}, Start: 9 * 60, Length: Duration(time.Hour)}
	b, _ = json.Marshal(rs)
	if want := `{"id":"x","title":"X","kind":"group","weekdays":["mon","wed"],"start":"09:00","length":"1h"}`; string(b) != want {
		t.Errorf("session JSON:\n got %s\nwant %s", b, want)
	}
}

// TestDateArithmetic: dates step over month ends and DST days.
func TestDateArithmetic(t *testing.T) {
	loc := newYork(t)
	if d := (Date{Year: 2026, Month: 3, Day: 7}).AddDays(2); d != (Date{Year: 2026, Month: 3, Day: 9}) {
		t.Errorf("2026-03-07 + 2 = %s", d)
	}
	if d := (Date{Year: 2026, Month: 12, Day: 31}).AddDays(1); d != (Date{Year: 2027, Month: 1, Day: 1}) {
		t.Errorf("2026-12-31 + 1 = %s", d)
	}
	if at := (Date{Year: 2026, Month: 3, Day: 8}).At(9*60, loc); at.UTC().Format("15:04") != "13:00" {
		t.Errorf("09:00 on the day DST starts is %s UTC, want 13:00", at.UTC())
	}
	if at := (Date{Year: 2026, Month: 11, Day: 1}).At(9*60, loc); at.UTC().Format("15:04") != "14:00" {
		t.Errorf("09:00 on the day DST ends is %s UTC, want 14:00", at.UTC())
	}
	if (Date{Year: 2026, Month: 3, Day: 9}).Weekday() != time.Monday {
		t.Error("2026-03-09 is a Monday")
	}
}
