// Package attendance counts the time each person spends in therapy
// sessions, exactly, for billing and for each client's weekly targets.
//
// # Model
//
// A Segment is one person's continuous presence in one session (room): it
// opens when they are admitted (waiting-room time never counts) and closes
// when they leave, are removed, drop, or the session ends. It records the
// exact UTC start and end (whole seconds), the room kind and title, the
// person's sub, name and role, and its state over time (MediaChange):
// the media the server receives from the person, from which each second
// is video, audio_only or no_media (what the server received, not what the
// client claims), and whether a therapist of the program is admitted in
// the room, from which each second is direct or no_clinician. Time without
// a clinician is recorded and shown but never billed: a billable day
// counts direct seconds only. A reconnect within the grace period (60 s)
// continues the segment; the time away is a Gap and is not counted. Every
// role is recorded (a therapist's own time is all direct); reports show
// the role.
//
// Time is split into local days of the program's time zone, cut at local
// midnight computed with time.Date (so 23- and 25-hour DST days are
// right), and rolled up per person per local day and per ISO week of the
// local date: seconds present, of which video, audio only and direct
// (Amount; no_media and no_clinician are the rest), sessions (distinct
// rooms), days attended (local days with any attendance), billable days
// (local days with at least 3 h of direct service).
//
// Rounding: everything is kept in whole seconds. Reports show minutes as
// floor(seconds / 60) of the exact total being reported (a session, a
// day, a week): 5,430 s (18:02:10 to 19:32:40) is 90 minutes. Minutes are
// never added up after rounding, and thresholds (billable day, weekly
// hours) compare exact seconds.
//
// Weekly status (WeeklyStatus) compares a client's week with their targets
// (9 h and 3 days by default; per client 6-19 h, 3-5 days): on_track when
// met or still reachable, at_risk when the rest of the week (the client's
// remaining scheduled sessions, or without a schedule 4 h on each
// remaining day) cannot reach them, below when the week is over and they
// were not met. All of these numbers are Rules.
//
// Each program's Policy (ProgramConfig, from its schedule file) decides
// what counts: a scheduled session is attended with direct service inside
// its window for SessionShare of its length (half); arriving or leaving
// beyond LateMargin (10 min) is flagged; a day counts toward the target days
// with DayMinimum (1 h) of direct service (Policy.Judge, DaysReaching). An
// absence is an expected session that ended and was not attended;
// AbsenceFlags flags the latest 2 expected sessions all missed, or 6 missed
// within 12 weeks. Staff record absence reasons (SetAbsence: excused,
// no_show, cancelled by the program, which drops the session from what is
// expected) and corrections (Correct: new bounds for a closed segment, or
// a presence the record lacks); both are events in the chain with their
// author, never edits, so verify, rebuild and the rollups apply them.
// BillingWeek and BillingRange (a billing month, up to MaxRangeDays) give
// one line per client per date of service with the program's codes
// (Billing), the rendering clinicians and the evidence. A correction of a
// therapist's presence recomputes the direct service of the others in the
// room where it moved (followClinician); time a correction adds to anyone
// else's presence is direct only where the record has a therapist in the
// room (clinicAdded); live and in Rebuild alike.
//
// # Storage (Redis)
//
// Per program, under keys iop:att:{program}:... (one Redis Cluster slot):
//
//   - events: an append-only stream. Each entry holds the event (canonical
//     JSON, with its sequence number), the previous entry's hash and its own
//     hash, sha256(prev hash, "\n", event bytes), or with Options.Key
//     (IOP_ATTENDANCE_KEY) its HMAC-SHA256 from the first event a keyed
//     node appended on; the head records the key id and that event, and a
//     node with another key refuses to append. Store.Append reads the
//     head, checks the event id against the dedupe hash, computes the new
//     state and writes stream, head, dedupe, segment and rollups in one
//     WATCH/MULTI transaction (retried on conflict), so nodes appending at
//     once cannot fork the chain and a replayed event id changes nothing.
//   - the state machine (admit, media, leave, resume) is one pure function
//     used by live appends and by Store.Rebuild, which replays the stream
//     into a fresh generation of keys and swaps it in; the result equals
//     the live rollups.
//   - open: open segment id -> last-seen time. Store.Heartbeat moves it;
//     Store.SweepStale closes segments not seen for a while at their
//     last-seen time with reason lost, so a dead node's minutes are neither
//     lost nor invented. If the node was only cut off from Redis, its next
//     heartbeat finds the segment closed and its recorder sends a media
//     event, which revives the segment from where it was closed (the node
//     vouches the person stayed connected).
//   - Store.Verify walks the chain and names the first event that was
//     altered or whose predecessors (or successors) were removed, then
//     replays the verified events and names the first stored rollup that
//     differs. Store.Rebuild checks the chain the same way as it replays
//     it and refuses a broken one (ErrBroken) unless RebuildForce.
//   - keys rotate: each keyed entry names its key id; Options.OldKeys
//     (IOP_ATTENDANCE_OLD_KEYS) verify what they wrote, and a chain last
//     keyed with one passes to Options.Key with its next event.
//     CheckHeads compares the chain with heads recorded elsewhere (the
//     audit trail's export entries, ParsePoint).
//   - every billing export ends with the chain head (ChainHead) its rows
//     were read at, and the export's audit entry records it.
//
// # Recording
//
// Recorder is a rooms.Listener. RoomEvent only queues; one goroutine turns
// EventJoined, EventUpdated, EventLeft and EventEnded into attendance
// events with unique ids (node, boot id, counter). A person's connections
// in one room share one segment (a second tab, or a reconnect before the
// old socket times out). A connection's media is what the media plane
// receives (rooms.Participant.Receiving, from EventReceiving) and the
// person has not turned off; the recorder knows which therapists are
// seated in each room and records no_clinician for everyone else there
// while none is. A person who joins another room leaves this one with
// reason moved at that moment (one room at a time, rooms.Manager.MoveOut). A drop writes a leave with reason dropped at
// once; an admission of the same person in the same room within the grace
// period writes a resume of that segment. Heartbeats go every 15 s for the
// node's open segments, and each heartbeat also sweeps every program for
// segments not seen for 45 s. When Redis is unreachable, events are
// appended to a spool file (JSON lines, fsync'd) and replayed in order
// when it returns; the dedupe makes a replay cut short safe to repeat.
//
// # Wiring (iopd)
//
//	st := attendance.New(store.Redis, attendance.Options{Zone: cfg.TimeZone, Schedule: sched, Roster: sched})
//	rec, err := attendance.NewRecorder(st, attendance.RecorderOptions{
//		Node:    nodeID,
//		Spool:   filepath.Join(dataDir, "attendance.spool"),
//	})
//	manager := rooms.NewManager(policies, rec)
//	...
//	// on SIGTERM, after rooms are drained:
//	rec.Close()
//
// Read side: Store.Week, Store.ProgramWeek, Store.Room, Store.Day,
// Store.WeekRows / Store.ExportWeek / WriteCSV for the billing CSV
// (docs/api.md's header), Store.Verify and Store.Rebuild for iopctl.
// Configuration: Store.SetProgramZone, Store.SetTargets,
// Store.SetProgramTargets.
package attendance
