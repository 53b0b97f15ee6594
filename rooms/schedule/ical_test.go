package schedule

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	ics "github.com/arran4/golang-ical"
)

// checkLines fails unless every line of an iCalendar document ends in
// CRLF and is at most 75 octets long (RFC 5545 section 3.1).
func checkLines(t *testing.T, doc []byte) {
	t.Helper()
	if !bytes.HasSuffix(doc, []byte("\r\n")) {
		t.Errorf("the document does not end with CRLF")
	}
	for i, l := range strings.Split(strings.TrimSuffix(string(doc), "\r\n"), "\r\n") {
		if strings.ContainsAny(l, "\r\n") {
			t.Errorf("line %d has a bare CR or LF: %q", i+1, l)
		}
		if len(l) > 75 {
			t.Errorf("line %d is %d octets long: %q", i+1, len(l), l)
		}
		if !utf8.ValidString(l) {
			t.Errorf("line %d splits a UTF-8 sequence: %q", i+1, l)
		}
	}
}

// TestFeed: the feed parses with a real iCalendar parser, lists exactly
// the client's sessions at the right UTC times, marks cancelled ones, and
// names neither the program nor any session: a calendar may be seen by
// others.
func TestFeed(t *testing.T) {
	s := withBooking(t)
	now := local(t, "2026-11-25 12:00")
	const joinURL = "https://telehealth.clinic.test/join"
	doc := s.Feed("demo-client-1", now, FeedOptions{JoinURL: joinURL})
	checkLines(t, doc)

	cal, err := ics.ParseCalendar(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("the feed does not parse: %v\n%s", err, doc)
	}
	want := s.Sessions("demo-client-1", now.Add(-DefaultFeedPast), now.Add(DefaultFeedAhead))
	byUID := map[string]Occurrence{}
	for _, o := range want {
		byUID[eventUID(o.ID)] = o
	}
	if len(want) < 30 {
		t.Fatalf("only %d sessions in the feed's range: the test data is wrong", len(want))
	}
	seen := map[string]bool{}
	cancelled := 0
	for _, ev := range cal.Events() {
		uid := ev.Id()
		if seen[uid] {
			t.Errorf("UID %s appears twice", uid)
		}
		seen[uid] = true
		start, err1 := ev.GetStartAt()
		end, err2 := ev.GetEndAt()
		if err1 != nil || err2 != nil {
			t.Fatalf("event %s: times do not parse: %v %v", uid, err1, err2)
		}
		summary := ev.GetProperty(ics.ComponentPropertySummary).Value
		status := ev.GetProperty(ics.ComponentPropertyStatus).Value
		if status == "CANCELLED" {
			cancelled++
			if !strings.HasSuffix(summary, "(cancelled)") {
				t.Errorf("cancelled event titled %q", summary)
			}
			continue
		}
		o, ok := byUID[uid]
		if !ok {
			t.Errorf("event %s at %s is not one of the client's sessions", uid, start)
			continue
		}
		delete(byUID, uid)
		if !start.Equal(o.Start) || !end.Equal(o.End) {
			t.Errorf("%s: event %s - %s, want %s - %s", o.ID, start, end, o.Start, o.End)
		}
		if wantSummary := map[bool]string{true: "Individual session", false: "Group session"}[o.Booked]; summary != wantSummary {
			t.Errorf("%s: summary %q, want %q", o.ID, summary, wantSummary)
		}
		desc := ev.GetProperty(ics.ComponentPropertyDescription).Value
		if !strings.Contains(desc, joinURL) || strings.Contains(desc, "token") {
			t.Errorf("%s: description %q: want the join page and no token", o.ID, desc)
		}
	}
	for _, o := range byUID {
		t.Errorf("session %s at %s is missing from the feed", o.ID, o.Start)
	}
	// Christmas Day and New Year's Day 2027 are Fridays: 2 x 3 day sessions.
	if cancelled != 6 {
		t.Errorf("%d cancelled events, want 6", cancelled)
	}

	// Nothing in the document may name the program, a session, a track,
	// a cohort or a person.
	text := string(doc)
	forbidden := []string{s.Program.Name, s.Program.ID + "-", "demo-client", "demo-therapist", "women", "veteran"}
	for _, tr := range s.Program.Tracks {
		forbidden = append(forbidden, tr.Name)
		for _, rs := range tr.Sessions {
			forbidden = append(forbidden, rs.Title, rs.ID)
		}
	}
	for _, rs := range s.Program.Shared {
		forbidden = append(forbidden, rs.Title, rs.ID)
	}
	unfolded := strings.ReplaceAll(text, "\r\n ", "")
	for _, w := range forbidden {
		if strings.Contains(strings.ToLower(unfolded), strings.ToLower(w)) {
			t.Errorf("the feed contains %q", w)
		}
	}
	for _, l := range strings.Split(unfolded, "\r\n") {
		if (strings.HasPrefix(l, "DTSTART") || strings.HasPrefix(l, "DTEND") || strings.HasPrefix(l, "DTSTAMP")) && !strings.HasSuffix(l, "Z") {
			t.Errorf("%q is not a UTC time", l)
		}
	}
}

// TestFeedUIDsStable: the same occurrence has the same UID in every feed,
// so that calendars update events instead of duplicating them.
func TestFeedUIDsStable(t *testing.T) {
	s := example(t)
	a := s.Feed("demo-client-2", local(t, "2026-11-25 12:00"), FeedOptions{Ahead: 7 * 24 * time.Hour})
	b := s.Feed("demo-client-2", local(t, "2026-11-26 12:00"), FeedOptions{Ahead: 6 * 24 * time.Hour})
	uids := func(doc []byte) []string {
		var out []string
		for _, l := range strings.Split(string(doc), "\r\n") {
			if strings.HasPrefix(l, "UID:") {
				out = append(out, l)
			}
		}
		return out
	}
	ua, ub := uids(a), uids(b)
	if len(ua) == 0 || strings.Join(ua, ",") != strings.Join(ub, ",") {
		t.Errorf("UIDs differ between two feeds of the same sessions:\n%v\n%v", ua, ub)
	}
}

// TestICSLine: folding at 75 octets without splitting UTF-8, and TEXT
// escaping, read back by the parser.
func TestICSLine(t *testing.T) {
	cases := []string{
		"short",
		strings.Repeat("a", 200),
		strings.Repeat("é", 100), // 2 octets each: folds must fall between them
		strings.Repeat("x", 64) + "€€€€€€€€", // a 3-octet rune across the 75th octet
		`commas, semicolons; backslash \ and a` + "\nnew line, " + strings.Repeat("ü", 40),
	}
	for _, desc := range cases {
		var w icsWriter
		w.line("BEGIN:VCALENDAR")
		w.line("VERSION:2.0")
		w.line("PRODID:-//iop//test//EN")
		w.line("BEGIN:VEVENT")
		w.prop("UID", "u@iop")
		w.line("DTSTAMP:20260101T000000Z")
		w.line("DTSTART:20260101T000000Z")
		w.prop("DESCRIPTION", desc)
		w.line("END:VEVENT")
		w.line("END:VCALENDAR")
		doc := w.buf.Bytes()
		checkLines(t, doc)
		cal, err := ics.ParseCalendar(bytes.NewReader(doc))
		if err != nil {
			t.Fatalf("%q: %v", desc, err)
		}
		if got := cal.Events()[0].GetProperty(ics.ComponentPropertyDescription).Value; got != desc {
			t.Errorf("description reads back as %q, want %q", got, desc)
		}
	}
	for in, want := range map[string]string{
		`a,b;c\d`:           `a\,b\;c\\d`,
		"one\r\ntwo\nthree": `one\ntwo\nthree`,
		"Group session":     "Group session",
	} {
		if got := escapeText(in); got != want {
			t.Errorf("escapeText(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFeedOfNobody: a person without sessions gets an empty, valid
// calendar.
func TestFeedOfNobody(t *testing.T) {
	doc := example(t).Feed("nobody", local(t, "2026-11-25 12:00"), FeedOptions{})
	cal, err := ics.ParseCalendar(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cal.Events()); n != 0 {
		t.Errorf("%d events for a person with no sessions", n)
	}
}
