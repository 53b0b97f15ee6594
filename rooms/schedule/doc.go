// Package schedule is the timetable of an intensive outpatient program: its
// time zone and tracks (day: Mon/Wed/Fri 09:00-12:00, evening: Mon/Tue/Thu
// 18:00-21:00), the recurring sessions of each track, holidays and one-off
// cancellations, individual and family sessions booked one at a time,
// client enrollment (one track at a time, changed by an explicit act with
// a date), join windows, "my next sessions", and a private iCalendar feed.
// It imports rooms and go-redis, never signaling or sfu.
//
// # Model
//
// A Program (time zone, JoinBefore 10m, JoinGrace 15m, StaffJoinBefore
// 30m, Holidays, Cancellations) holds Tracks of RecurringSessions (id,
// title, kind group|complementary|support, weekdays, local start, length,
// cap, optional cohort, therapists) and Shared sessions open to every
// track. A Booking is an individual or family session for one client with
// one therapist. An Enrollment places a client in a track from a start
// date, with weekly targets (9 h, 3 days), cohorts, track Changes, and an
// End date with an EndReason (discharge, completion, step_down).
//
// Local times stay local: a 09:00 session is 09:00 in the program's zone
// on either side of a DST change (14:00Z in winter, 13:00Z in summer in
// America/New_York). Instants are UTC. The package imports time/tzdata, so
// every binary that uses it (iopd, iopctl) knows the zones on minimal
// images too.
//
// # Occurrences and room ids
//
// Schedule.Occurrences lists the concrete meetings in a time range,
// skipping holidays and cancellations, with bookings (callers bound the
// range; a few months is cheap). Occurrences name therapists and clients
// by sub: serve them to staff only, and Slot to everyone else. An occurrence's ID is
// its room id: "<program>-<session>-<yyyymmdd>" (local date), e.g.
// "example-day-relapse-prevention-20261130", or a booking's id
// "<program>-b<12 hex>". Schedule.Find maps a room id back to its
// occurrence (ErrNotScheduled: an ad-hoc room).
//
// # Wiring into iopd (what to call where)
//
// Construct one Store next to the other Redis users:
//
//	sched := schedule.NewStore(st.Redis) // st is the *store.Store
//	// dev mode: load the example program (built in, same as
//	// the example program, Example) unless Redis has it already; Seed
//	// replaces the stored program, so do not seed over staff edits.
//	if _, err := sched.Program(ctx, "example"); errors.Is(err, schedule.ErrNotFound) {
//	        f, err := schedule.LoadYAML(bytes.NewReader(schedule.Example))
//	        ...
//	        err = sched.Seed(ctx, f)
//	}
//
// Dev-mode links: the demo people are demo-client-1 (day track, women
// cohort), demo-client-2 (evening), demo-client-3 (moved from day to
// evening on 2026-03-02, veterans cohort), demo-therapist (runs the day
// and evening groups and the women's group), demo-art-therapist (music and
// art) and demo-peer-specialist (peer support). Their next room ids come
// from Upcoming: mint each token for the room of their next session.
//
// Join (signaling, before seats are claimed), for a token of program P:
//
//	occ, err := sched.Check(ctx, P, roomID, claims.Subject, claims.Role, time.Now())
//	switch {
//	case errors.Is(err, schedule.ErrNotScheduled):
//	        // ad-hoc room: as today (kind from the therapist's token)
//	case errors.As(err, &je): // je *schedule.JoinError
//	        // send error {code: je.Code, message: je.Error(), next: je.Next}
//	        // and close. Code is too_early, too_late, wrong_track,
//	        // not_enrolled, forbidden or cancelled (new).
//	case err != nil:
//	        // Redis trouble: internal
//	default:
//	        // open the room with occ.Kind, occ.Title, occ.Cap and
//	        // RestrictToCohort(occ.Cohort); SetAutoAdmit as the program wants
//	}
//
// The cohort check is done here against the enrollment. A room restricted
// with RestrictToCohort checks rooms.Participant.Cohorts as well: fill
// those from the enrollment (Store.Enrollment(...).Cohorts) rather than
// from the token, or the two may disagree.
//
// A program the store does not know answers ErrNotFound: treat the room as
// ad-hoc too. Therapists of the program may join any of its sessions
// (assigned or covering), but a booking only if they run it; family and
// staff joins are decided by their invitation or grant, and only the
// window is checked here.
//
// HTTP API (docs/api.md):
//
//   - GET /v1/me/sessions: sched.Upcoming(ctx, claims.Program, claims.Subject,
//     claims.Role, now, 10) gives []Slot, ready for JSON ({"sessions": ...}).
//   - GET /v1/calendar/{secret}.ics: sched.Feed(ctx, secret, now,
//     FeedOptions{JoinURL: publicURL + "/join"}); ErrNotFound answers 404;
//     Content-Type FeedContentType, Cache-Control: no-store.
//   - the feed URL for the join page: sched.FeedSecret(ctx, program, sub)
//     (e.g. GET /v1/me/calendar returning {"url": ".../v1/calendar/<secret>.ics"});
//     RotateFeed and RevokeFeed behind POST and DELETE on it (the client
//     themself, or staff for them).
//
// Staff CRUD (role with rooms.ActManageSchedule, token program = {program});
// ErrInvalid answers 422 with its message (it lists every problem),
// ErrNotFound 404:
//
//	GET    /v1/programs/{program}/schedule              Store.Program
//	PUT    /v1/programs/{program}/schedule              Store.PutProgram (whole program)
//	PUT    /v1/programs/{program}/tracks/{track}        Store.PutTrack
//	DELETE /v1/programs/{program}/tracks/{track}        Store.DeleteTrack
//	PUT    /v1/programs/{program}/sessions/{session}    Store.PutSession (?track=, "" = shared)
//	DELETE /v1/programs/{program}/sessions/{session}    Store.DeleteSession
//	PUT    /v1/programs/{program}/holidays/{date}       Store.AddHoliday
//	DELETE /v1/programs/{program}/holidays/{date}       Store.RemoveHoliday
//	PUT    /v1/programs/{program}/cancellations/{session}/{date}  Store.Cancel
//	DELETE /v1/programs/{program}/cancellations/{session}/{date}  Store.Uncancel
//	GET    /v1/programs/{program}/occurrences?from=&to= Store.Load + Schedule.Occurrences
//	GET    /v1/programs/{program}/enrollments           Store.Enrollments
//	PUT    /v1/programs/{program}/enrollments/{sub}     Store.Enroll
//	POST   /v1/programs/{program}/enrollments/{sub}/track  Store.ChangeTrack {track, effective, reason}
//	POST   /v1/programs/{program}/enrollments/{sub}/end    Store.EndEnrollment {end, reason}
//	DELETE /v1/programs/{program}/enrollments/{sub}     Store.DeleteEnrollment
//	POST   /v1/programs/{program}/bookings              Store.Book (therapists too)
//	GET    /v1/programs/{program}/people/{sub}/bookings Store.Bookings
//	DELETE /v1/programs/{program}/bookings/{id}         Store.CancelBooking
//
// iopctl (the same calls, against Redis or the API):
//
//	iopctl schedule seed FILE.yaml             validate and store a schedule file (Seed)
//	iopctl schedule check FILE.yaml            validate only (LoadYAML)
//	iopctl schedule show PROGRAM [-week 2026-W49]   occurrences in the program's zone
//	iopctl schedule holiday add|rm PROGRAM DATE
//	iopctl schedule cancel|uncancel PROGRAM SESSION DATE [-reason ...]
//	iopctl schedule book PROGRAM -client SUB -therapist SUB -kind individual -start "2026-12-01 14:00" -length 50m
//	iopctl enroll PROGRAM SUB -track day -start DATE [-cohort women]
//	iopctl enroll track PROGRAM SUB TRACK -effective DATE
//	iopctl enroll end PROGRAM SUB -date DATE -reason discharge|completion|step_down
//	iopctl schedule feed PROGRAM SUB [-rotate|-revoke]
//
// Attendance: Store.Remaining (or Schedule.Remaining) gives a client's
// sessions still to come this week, for telling on_track from at_risk;
// Enrollment gives the weekly targets.
//
// # Calendar feed
//
// Schedule.Feed writes RFC 5545: CRLF lines folded at 75 octets, UTC times,
// UIDs that are stable per occurrence but opaque (a hash: room ids name the
// program and the topic), SUMMARY "Group session", "Individual session" or
// "Family session" and never the program's name or a session title, a
// DESCRIPTION with the join page's address and no token. Cancelled
// occurrences are listed with STATUS:CANCELLED. Feed secrets are 256-bit
// random, stored in Redis by hash, revocable (RevokeFeed; ending an
// enrollment revokes it) and rotatable (RotateFeed).
//
// # YAML
//
// LoadYAML reads a file shaped like the example program (`iopctl schedule example`):
//
//	program: {id, name, time_zone, join_before, join_grace, staff_join_before,
//	          holidays: [yyyy-mm-dd], cancellations: [{date, session, reason}],
//	          tracks: [{id, name, sessions: [{id, title, kind, weekdays: [mon, ...],
//	                    start: "hh:mm", length: 1h, cap, cohort, therapists: [sub]}]}],
//	          shared: [sessions],
//	          telehealth: {checkin: true, consent: {version, text}}}
//	enrollments: [{sub, track, start, planned_days, target_hours, target_days,
//	               cohorts, changes: [{track, effective, reason}], end, end_reason}]
//	bookings: [{kind, start: RFC 3339, length, client, therapist, title}]
//
// telehealth is what the program's clients confirm (package
// rooms/telehealth): checkin asks each client, at every session, for their
// location, whether it is private and a callback phone; consent is a text
// with a version (1 to 32 letters, digits, '.', '-', '_'; at most
// MaxConsentText bytes) each client acknowledges once per enrollment and
// again when the version changes.
//
// Unknown fields are refused. Invalid schedules are refused with an error
// that wraps ErrInvalid and lists every problem, and nothing is stored: an
// unknown time zone, a cap above the kind's maximum, a therapist in two
// sessions at once, two sessions of one track at once (unless for
// different cohorts), an enrollment in a track that does not exist, a
// booking that clashes with the therapist's or the client's sessions.
//
// # Redis
//
// Keys are listed in store.go; a program's keys share the hash tag
// {program}. Writes are optimistic transactions (WATCH) that validate the
// result before storing it, so concurrent bookings on two nodes cannot
// double-book a therapist.
package schedule
