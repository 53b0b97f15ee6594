package schedule

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"iop/rooms"
)

// Feed defaults.
const (
	// DefaultFeedPast and DefaultFeedAhead bound the occurrences a
	// calendar feed lists around now.
	DefaultFeedPast  = 14 * 24 * time.Hour
	DefaultFeedAhead = 90 * 24 * time.Hour
	// FeedContentType is the media type of a feed (RFC 5545 section 8.1).
	FeedContentType = "text/calendar; charset=utf-8"
)

// FeedOptions shape a calendar feed.
type FeedOptions struct {
	// JoinURL is the join page's address without a token, e.g.
	// "https://telehealth.example.org/join"; it goes in each event's
	// description. Empty: the description only says when the room opens.
	JoinURL string
	// Past and Ahead bound the occurrences listed around now (0:
	// DefaultFeedPast, DefaultFeedAhead).
	Past, Ahead time.Duration
}

// neutralSummary is an event title that says what kind of appointment it
// is and nothing about the program, the diagnosis or the session's topic:
// a calendar may be seen by others.
func neutralSummary(k rooms.Kind) string {
	switch k {
	case rooms.KindIndividual:
		return "Individual session"
	case rooms.KindFamily:
		return "Family session"
	default:
		return "Group session"
	}
}

// eventUID is an occurrence's UID: stable, and opaque, because room ids
// carry the program and session names.
func eventUID(occurrenceID string) string {
	h := sha256.Sum256([]byte("iop-calendar\x00" + occurrenceID))
	return hex.EncodeToString(h[:16]) + "@iop"
}

// Feed returns sub's sessions around now as an iCalendar (RFC 5545)
// document: one VEVENT per occurrence, times in UTC, neutral titles
// ("Group session", "Individual session", "Family session") and a
// description with the join page's address only. Cancelled occurrences
// are listed with STATUS:CANCELLED, so that calendars that imported them
// strike them out.
func (s *Schedule) Feed(sub string, now time.Time, opts FeedOptions) []byte {
	past, ahead := opts.Past, opts.Ahead
	if past == 0 {
		past = DefaultFeedPast
	}
	if ahead == 0 {
		ahead = DefaultFeedAhead
	}
	occ := s.sessions(sub, now.Add(-past), now.Add(ahead), true)
	var w icsWriter
	w.line("BEGIN:VCALENDAR")
	w.line("VERSION:2.0")
	w.line("PRODID:-//iop//schedule//EN")
	w.line("CALSCALE:GREGORIAN")
	w.line("METHOD:PUBLISH")
	w.prop("X-WR-CALNAME", "Sessions")
	w.line("REFRESH-INTERVAL;VALUE=DURATION:PT1H")
	w.line("X-PUBLISHED-TTL:PT1H")
	stamp := icsTime(now)
	for i := range occ {
		o := &occ[i]
		role := rooms.RoleClient
		if slices.Contains(o.Therapists, sub) {
			role = rooms.RoleTherapist
		}
		opens, _ := s.Window(o, role)
		w.line("BEGIN:VEVENT")
		w.prop("UID", eventUID(o.ID))
		w.line("DTSTAMP:" + stamp)
		w.line("DTSTART:" + icsTime(o.Start))
		w.line("DTEND:" + icsTime(o.End))
		summary := neutralSummary(o.Kind)
		if o.Cancelled {
			summary += " (cancelled)"
		}
		w.prop("SUMMARY", summary)
		desc := fmt.Sprintf("The room opens %d minutes before the start.", int(o.Start.Sub(opens)/time.Minute))
		if opts.JoinURL != "" {
			desc = "Join from " + opts.JoinURL + ". " + desc
		}
		if o.Cancelled {
			desc = "This session is cancelled."
		}
		w.prop("DESCRIPTION", desc)
		w.line("CLASS:PRIVATE")
		w.line("TRANSP:OPAQUE")
		if o.Cancelled {
			w.line("STATUS:CANCELLED")
			w.line("SEQUENCE:1")
		} else {
			w.line("STATUS:CONFIRMED")
			w.line("SEQUENCE:0")
		}
		w.line("END:VEVENT")
	}
	w.line("END:VCALENDAR")
	return w.buf.Bytes()
}

// icsTime writes t as an RFC 5545 UTC DATE-TIME (form #2, with Z).
func icsTime(t time.Time) string { return t.UTC().Format("20060102T150405Z") }

// icsWriter writes content lines: CRLF-terminated, folded at 75 octets.
type icsWriter struct{ buf bytes.Buffer }

// prop writes a property whose value is TEXT, escaped.
func (w *icsWriter) prop(name, text string) { w.line(name + ":" + escapeText(text)) }

// line writes one content line, folded so that no physical line exceeds
// 75 octets (RFC 5545 section 3.1): continuation lines begin with a space,
// and a fold never splits a UTF-8 sequence.
func (w *icsWriter) line(s string) {
	limit := 75
	for len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		w.buf.WriteString(s[:cut])
		w.buf.WriteString("\r\n ")
		s = s[cut:]
		limit = 74 // the leading space counts
	}
	w.buf.WriteString(s)
	w.buf.WriteString("\r\n")
}

// escapeText escapes an RFC 5545 TEXT value (section 3.3.11).
func escapeText(s string) string {
	return strings.NewReplacer(`\`, `\\`, ";", `\;`, ",", `\,`, "\r\n", `\n`, "\n", `\n`, "\r", `\n`).Replace(s)
}
