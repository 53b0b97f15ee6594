// Package audit keeps the audit trail HIPAA §164.312(b) asks for: an
// append-only, hash-chained Redis stream per program of every access to
// health records and every decision about people (joins and refusals,
// admissions, moderation, invitations, blocks, attendance reads and
// exports, schedule, enrollment and booking changes).
//
// Entries name people by their sub only: never a display name, a token,
// SDP or ICE credentials. Each entry is chained to its predecessor by hash
// (package chain), with HMAC-SHA256 when a key is configured, so that an
// edit, a removal or a removed tail is found by Verify; someone who can
// write to Redis but has no key cannot recompute the chain after an edit.
// Retention (Trim) removes entries older than six years and records in the
// chain itself where it now begins.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"iop/rooms/chain"
)

// Actions an entry records.
const (
	ActionJoin             = "join"              // a person joined a room (or its waiting room)
	ActionRefuse           = "refuse"            // a join or an action was refused; Code says why
	ActionAdmit            = "admit"             // Actor admitted Subject from the waiting room
	ActionDeny             = "deny"              // Actor turned Subject away from the waiting room
	ActionMute             = "mute"              // Actor muted Subject
	ActionRemove           = "remove"            // Actor removed Subject from the session
	ActionLock             = "lock"              // Actor locked the room
	ActionUnlock           = "unlock"            // Actor unlocked the room
	ActionAutoAdmit        = "auto_admit"        // Actor let people in without waiting
	ActionAutoAdmitOff     = "auto_admit_off"    // Actor made people wait for admission again
	ActionChatOn           = "chat_on"           // Actor let clients and family chat
	ActionChatOff          = "chat_off"          // Actor turned chat off for clients and family
	ActionChatRemove       = "chat_remove"       // Actor removed a chat message (Detail: its id; never its text)
	ActionEnd              = "end"               // Actor ended the session
	ActionHost             = "host"              // Actor handed the host role to Subject
	ActionInvite           = "invite"            // Actor invited a family member (Subject, when known)
	ActionBlock            = "block"             // Actor blocked Subject in the program
	ActionUnblock          = "unblock"           // Actor lifted Subject's block
	ActionAttendanceRead   = "attendance_read"   // Actor read attendance (Detail: the route or week)
	ActionAttendanceExport = "attendance_export" // Actor exported attendance (the billing CSV)
	ActionAuditRead        = "audit_read"        // Actor read this audit trail
	ActionAbsence          = "absence"           // Actor recorded (or cleared) why Subject missed a session (Room)
	ActionCorrection       = "correction"        // Actor corrected Subject's attendance (a new event in the chain)
	ActionScheduleChange   = "schedule_change"   // Actor changed the program's schedule
	ActionEnrollmentChange = "enrollment_change" // Actor changed Subject's enrollment
	ActionBookingChange    = "booking_change"    // Actor booked or cancelled a session for Subject
	ActionConsent          = "consent"           // Actor (a client) acknowledged the program's telehealth consent (Detail: the version)
	// ActionTrim is written by Trim only: entries before Detail's anchor
	// were removed by retention.
	ActionTrim = "trim"
)

// Breakout-room decisions (Detail: the breakout number, or how many were
// opened; the timer's bring-back is nobody's decision and not recorded).
const (
	ActionBreakoutOpen  = "breakout_open"  // Actor split the session into breakout rooms
	ActionBreakoutMove  = "breakout_move"  // Actor moved Subject to a breakout (0: the main room)
	ActionBreakoutVisit = "breakout_visit" // Actor went to a breakout (0: back to the main room)
	ActionBreakoutClose = "breakout_close" // Actor brought everyone back to the main room
)

// actions are the actions Append accepts (ActionTrim is Trim's own).
var actions = map[string]bool{
	ActionJoin: true, ActionRefuse: true, ActionAdmit: true, ActionDeny: true, ActionMute: true,
	ActionRemove: true, ActionLock: true, ActionUnlock: true, ActionEnd: true, ActionHost: true,
	ActionAutoAdmit: true, ActionAutoAdmitOff: true, ActionChatOn: true, ActionChatOff: true, ActionChatRemove: true,
	ActionInvite: true, ActionBlock: true, ActionUnblock: true, ActionAttendanceRead: true,
	ActionAttendanceExport: true, ActionAuditRead: true, ActionScheduleChange: true,
	ActionEnrollmentChange: true, ActionBookingChange: true, ActionConsent: true,
	ActionBreakoutOpen: true, ActionBreakoutMove: true, ActionBreakoutVisit: true, ActionBreakoutClose: true, ActionAbsence: true, ActionCorrection: true,
}

// Entry is one access or decision in a program's audit trail.
type Entry struct {
	ID      string    `json:"id"`                // assigned by Append: the stream entry id
	Seq     int64     `json:"seq"`               // 1, 2, 3... per program
	At      time.Time `json:"at"`                // UTC, set by Append if zero
	Program string    `json:"program"`           // the program whose trail holds it
	Actor   string    `json:"actor,omitempty"`   // sub of who acted; "" for the system
	Role    string    `json:"role,omitempty"`    // the actor's role
	Action  string    `json:"action"`            // one of the Action constants
	Room    string    `json:"room,omitempty"`    // the room, when there is one
	Subject string    `json:"subject,omitempty"` // sub of whom it is about
	Code    string    `json:"code,omitempty"`    // a refusal's protocol error code
	Detail  string    `json:"detail,omitempty"`  // e.g. the route, the week read, a reason kind
	Addr    string    `json:"addr,omitempty"`    // the client's IP address
	Prev    string    `json:"prev"`              // the predecessor's hash ("" for the first)
	Hash    string    `json:"hash"`              // this entry's hash (see Verify)
}

// record is the part of an Entry that is stored and hashed: the Entry
// without its stream id and hashes, as JSON in this field order.
type record struct {
	Seq     int64     `json:"seq"`
	At      time.Time `json:"at"`
	Program string    `json:"program"`
	Actor   string    `json:"actor,omitempty"`
	Role    string    `json:"role,omitempty"`
	Action  string    `json:"action"`
	Room    string    `json:"room,omitempty"`
	Subject string    `json:"subject,omitempty"`
	Code    string    `json:"code,omitempty"`
	Detail  string    `json:"detail,omitempty"`
	Addr    string    `json:"addr,omitempty"`
}

func (r record) entry(id, prev, hash string) Entry {
	return Entry{
		ID: id, Seq: r.Seq, At: r.At, Program: r.Program, Actor: r.Actor, Role: r.Role, Action: r.Action,
		Room: r.Room, Subject: r.Subject, Code: r.Code, Detail: r.Detail, Addr: r.Addr, Prev: prev, Hash: hash,
	}
}

// Errors callers branch on.
var (
	// ErrInvalid: the entry or argument is not acceptable (a permanent
	// error: retrying will not help). The message names the field, never
	// its value.
	ErrInvalid = errors.New("audit: invalid")
	// ErrWrongKey: the program's chain was written with another key (or
	// with a key, and this Log has none): appending would break it.
	ErrWrongKey = errors.New("audit: the chain was written with another key")
	// ErrKeyRequired: the chain is keyed and this Log has no key to verify it.
	ErrKeyRequired = errors.New("audit: the chain is keyed (HMAC): set the audit key to verify it")
	// ErrBroken: Trim refused to remove entries from a chain that does not
	// verify, which would destroy the evidence.
	ErrBroken = errors.New("audit: the chain does not verify")
	// ErrRetention: the configured retention is shorter than MinRetention.
	ErrRetention = errors.New("audit: retention shorter than six years")
	// ErrUnreadable: a stored entry does not decode (run Verify).
	ErrUnreadable = errors.New("audit: unreadable entry")
)

// DefaultRetention is how long entries are kept: six years, HIPAA's
// documentation period (§164.316(b)(2)), counted as 2,192 days so that two
// leap days fit.
const DefaultRetention = (6*365 + 2) * 24 * time.Hour

// MinRetention is the shortest retention Trim accepts: a typo such as
// "6h" must not wipe the trail.
const MinRetention = DefaultRetention

// Page sizes.
const (
	DefaultPageSize = 100 // Page's limit when none is given
	MaxPageSize     = 500 // Page's largest limit
)

// Field bounds, in bytes.
const (
	maxProgram = 64
	maxField   = 128 // actor, role, room, subject, code
	maxDetail  = 256
)

// programPattern is what a program id looks like in an audit key (a
// superset of schedule's ids: tokens name programs too). No braces, so the
// Redis Cluster hash tag holds.
var programPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// streamID is a Redis stream entry id.
var streamID = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// Options configure a Log. Zero fields take their defaults.
type Options struct {
	// Key, when set, makes the chain HMAC-SHA256 under it (IOP_AUDIT_KEY):
	// someone with Redis write access but not the key cannot recompute it.
	// Every node, and iopctl, must use the same key from a program's first
	// entry on; changing it fails Append and Verify (ErrWrongKey).
	Key []byte
	// Retention is how long Trim keeps entries (default DefaultRetention,
	// IOP_AUDIT_RETENTION).
	Retention time.Duration
	// Now is the clock for entry times and retention (default time.Now).
	Now func() time.Time
}

// Log is the audit trail of every program, kept in Redis and shared by
// every node of a deployment.
type Log struct {
	rdb   redis.Cmdable
	opts  Options
	keyID string // identifies the key in each chain's head; "" without one
}

// New returns a Log over rdb.
func New(rdb redis.Cmdable, opts Options) *Log {
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	l := &Log{rdb: rdb, opts: opts}
	l.keyID = chain.KeyID(opts.Key, "iop audit key id")
	return l
}

// Keyed reports whether the Log chains with HMAC under a key.
func (l *Log) Keyed() bool { return l.keyID != "" }

// programsKey is the set of programs that have an audit trail.
const programsKey = "iop:audit:programs"

// keys names one program's keys. Braces make them one Redis Cluster hash
// slot, so that a script may use both.
type keys struct {
	stream string // the entries
	head   string // hash: seq, hash of the last entry; key id; anchor_seq, anchor_prev after a trim
}

func keysFor(program string) keys {
	p := "iop:audit:{" + program + "}:"
	return keys{stream: p + "stream", head: p + "head"}
}

// checkProgram refuses a program id that cannot name a trail.
func checkProgram(program string) error {
	if len(program) > maxProgram || !programPattern.MatchString(program) {
		return fmt.Errorf("%w program id: want 1 to %d letters, digits, '.', '-' or '_'", ErrInvalid, maxProgram)
	}
	return nil
}

// checkField refuses what must never be in the trail: anything longer than
// max, control characters (SDP, multi-line blobs), invalid UTF-8, and what
// looks like a JWT or ICE credentials. The error names the field only.
func checkField(name, v string, max int) error {
	bad := func(why string) error { return fmt.Errorf("%w %s: %s", ErrInvalid, name, why) }
	switch {
	case len(v) > max:
		return bad(fmt.Sprintf("longer than %d bytes", max))
	case !utf8.ValidString(v):
		return bad("not UTF-8")
	case strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return bad("control characters")
	case strings.Contains(v, "eyJ"):
		return bad("looks like a token (never store tokens)")
	case strings.Contains(v, "ice-pwd") || strings.Contains(v, "ice-ufrag"):
		return bad("looks like ICE credentials")
	}
	return nil
}

// prepare validates e and returns what Append stores (without Seq).
func (l *Log) prepare(e Entry) (record, error) {
	if err := checkProgram(e.Program); err != nil {
		return record{}, err
	}
	if !actions[e.Action] {
		return record{}, fmt.Errorf("%w action: unknown (want one of the Action constants)", ErrInvalid)
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"actor", e.Actor, maxField}, {"role", e.Role, maxField}, {"room", e.Room, maxField},
		{"subject", e.Subject, maxField}, {"code", e.Code, maxField}, {"detail", e.Detail, maxDetail},
	} {
		if err := checkField(f.name, f.v, f.max); err != nil {
			return record{}, err
		}
	}
	addr, err := normalAddr(e.Addr)
	if err != nil {
		return record{}, err
	}
	at := e.At
	if at.IsZero() {
		at = l.opts.Now()
	}
	return record{
		At: at.UTC().Truncate(time.Millisecond), Program: e.Program, Actor: e.Actor, Role: e.Role, Action: e.Action,
		Room: e.Room, Subject: e.Subject, Code: e.Code, Detail: e.Detail, Addr: addr,
	}, nil
}

// normalAddr returns the IP address of an "ip" or "ip:port" string.
func normalAddr(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.WithZone("").Unmap().String(), nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().WithZone("").Unmap().String(), nil
	}
	return "", fmt.Errorf("%w addr: want an IP address", ErrInvalid)
}

// head is the state of a program's chain.
type head struct {
	seq        int64
	hash       string
	key        string
	anchorSeq  int64 // the first entry kept by the last trim (1 when never trimmed)
	anchorPrev string
}

func readHead(ctx context.Context, c redis.Cmdable, k keys) (head, error) {
	v, err := c.HMGet(ctx, k.head, "seq", "hash", "key", "anchor_seq", "anchor_prev").Result()
	if err != nil {
		return head{}, fmt.Errorf("read audit chain head: %w", err)
	}
	str := func(i int) string { s, _ := v[i].(string); return s }
	h := head{hash: str(1), key: str(2), anchorPrev: str(4), anchorSeq: 1}
	h.seq, _ = strconv.ParseInt(str(0), 10, 64)
	if n, err := strconv.ParseInt(str(3), 10, 64); err == nil && n > 1 {
		h.anchorSeq = n
	}
	return h, nil
}

// appendScript adds an entry if the head is still the one its hash was
// computed from (compare-and-set: concurrent nodes cannot fork the chain),
// and otherwise returns the current head so the caller can try again at
// once. KEYS: stream, head, programs set. ARGV: the head's seq and hash
// as read, the key id, the new seq, hash and body, the program.
var appendScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[2], 'seq', 'hash', 'key')
local seq = h[1] or '0'
local hash = h[2] or ''
if seq ~= ARGV[1] or hash ~= ARGV[2] then
  return {0, seq, hash, h[3] or ''}
end
local id = redis.call('XADD', KEYS[1], '*', 'prev', ARGV[2], 'hash', ARGV[5], 'entry', ARGV[6])
redis.call('HSET', KEYS[2], 'seq', ARGV[4], 'hash', ARGV[5], 'key', ARGV[3])
redis.call('SADD', KEYS[3], ARGV[7])
return {1, id}
`)

// maxTries bounds Append's compare-and-set attempts.
const maxTries = 200

// Append adds e to the end of its program's chain and returns it as
// stored: with its stream id, sequence number, time (now if e.At is zero;
// UTC, to the millisecond) and hashes. Concurrent appends from any number
// of nodes sharing Redis keep one unbroken chain. Errors wrapping
// ErrInvalid or ErrWrongKey are permanent; others mean Redis is failing.
func (l *Log) Append(ctx context.Context, e Entry) (Entry, error) {
	r, err := l.prepare(e)
	if err != nil {
		return Entry{}, err
	}
	return l.append(ctx, r)
}

func (l *Log) append(ctx context.Context, r record) (Entry, error) {
	k := keysFor(r.Program)
	h, err := readHead(ctx, l.rdb, k)
	if err != nil {
		return Entry{}, err
	}
	for try := 0; try < maxTries; try++ {
		if h.seq > 0 && h.key != l.keyID {
			return Entry{}, fmt.Errorf("append %s to the audit trail of %s: %w", r.Action, r.Program, ErrWrongKey)
		}
		r.Seq = h.seq + 1
		body, err := json.Marshal(r)
		if err != nil {
			return Entry{}, fmt.Errorf("encode audit entry: %w", err)
		}
		hash := chain.Hash(l.opts.Key, h.hash, body)
		res, err := appendScript.Run(ctx, l.rdb, []string{k.stream, k.head, programsKey},
			strconv.FormatInt(h.seq, 10), h.hash, l.keyID, r.Seq, hash, body, r.Program).Slice()
		if err != nil {
			return Entry{}, fmt.Errorf("append %s to the audit trail of %s: %w", r.Action, r.Program, err)
		}
		if ok, _ := res[0].(int64); ok == 1 && len(res) == 2 {
			id, _ := res[1].(string)
			return r.entry(id, h.hash, hash), nil
		}
		if len(res) != 4 {
			return Entry{}, fmt.Errorf("append to the audit trail of %s: unexpected answer %v", r.Program, res)
		}
		// Another writer got in first: chain onto its entry.
		s, _ := res[1].(string)
		h.seq, _ = strconv.ParseInt(s, 10, 64)
		h.hash, _ = res[2].(string)
		h.key, _ = res[3].(string)
		if try >= 3 { // busy: spread the writers out a little
			select {
			case <-time.After(time.Duration(rand.IntN(1000*(try/3+1))) * time.Microsecond):
			case <-ctx.Done():
				return Entry{}, fmt.Errorf("append to the audit trail of %s: %w", r.Program, ctx.Err())
			}
		}
	}
	return Entry{}, fmt.Errorf("append to the audit trail of %s: the chain kept moving (%d tries)", r.Program, maxTries)
}

// decode reads one stream entry: its link for a chain check and the entry.
func (l *Log) decode(program string, x redis.XMessage) (Entry, chain.Link, bool) {
	prev, ok1 := x.Values["prev"].(string)
	hash, ok2 := x.Values["hash"].(string)
	body, ok3 := x.Values["entry"].(string)
	link := chain.Link{Prev: prev, Hash: hash}
	var r record
	if !ok1 || !ok2 || !ok3 || json.Unmarshal([]byte(body), &r) != nil {
		return Entry{ID: x.ID, Program: program, Prev: prev, Hash: hash}, link, false
	}
	link.Seq = r.Seq
	link.Intact = r.Program == program && chain.Hash(l.opts.Key, prev, []byte(body)) == hash
	return r.entry(x.ID, prev, hash), link, true
}

// Programs returns every program with an audit trail, e.g. for Trim.
func (l *Log) Programs(ctx context.Context) ([]string, error) {
	out, err := l.rdb.SMembers(ctx, programsKey).Result()
	if err != nil {
		return nil, fmt.Errorf("list audit programs: %w", err)
	}
	slices.Sort(out)
	return out, nil
}
