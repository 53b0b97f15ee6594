package attendance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"iop/rooms/chain"
)

// Options configure a Store. Zero fields take their defaults.
type Options struct {
	// Zone is the time zone of programs that have none set with
	// SetProgramZone (IOP_TIMEZONE; default UTC).
	Zone *time.Location
	// Rules are the domain numbers (DefaultRules for zero fields).
	Rules Rules
	// Schedule gives the sessions each client is expected at (nil: unknown).
	Schedule Schedule
	// Roster lists enrolled clients for program reports (nil: only people
	// with attendance are listed).
	Roster Roster
	// Programs gives each program's attendance policy and billing settings
	// (nil: DefaultPolicy and DefaultBilling for all).
	Programs ProgramConfig
	// Now is the clock for "so far" and statuses (default time.Now).
	Now func() time.Time
	// Key, when set, makes each program's chain HMAC-SHA256 under it
	// (IOP_ATTENDANCE_KEY) from the next event on: someone who can write
	// to Redis but has not the key cannot recompute the chain after an
	// edit. A chain begun without a key keeps its unkeyed events as they
	// are; the head records where keying began and the key's id. Every
	// node, and iopctl, must then use the same key: another key, or none,
	// fails Append (ErrWrongKey) rather than fork the chain.
	Key []byte
	// OldKeys are keys that keyed the chains before Key (IOP_ATTENDANCE_OLD_KEYS):
	// the events they wrote still verify, and a chain whose head one of
	// them wrote passes to Key with its next event (rotation). They never
	// write.
	OldKeys [][]byte
}

// Store keeps attendance in Redis: per program, an append-only, hash-chained
// event stream, the segments it describes, and rollups per person per local
// day and per ISO week. Every node of a deployment shares it.
type Store struct {
	rdb   *redis.Client
	opts  Options
	keyID string            // chain.KeyID of opts.Key; "" without one
	known map[string][]byte // key id -> key: Key and OldKeys
	zones sync.Map          // zone name -> *time.Location
}

// New returns a store over rdb.
func New(rdb *redis.Client, opts Options) *Store {
	if opts.Zone == nil {
		opts.Zone = time.UTC
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Rules = opts.Rules.withDefaults()
	s := &Store{rdb: rdb, opts: opts, keyID: chain.KeyID(opts.Key, keyLabel), known: map[string][]byte{}}
	for _, k := range append([][]byte{opts.Key}, opts.OldKeys...) {
		if len(k) > 0 {
			s.known[chain.KeyID(k, keyLabel)] = k
		}
	}
	return s
}

// knows reports whether the Store holds the key with id (Key or one of
// OldKeys).
func (s *Store) knows(id string) bool { return id != "" && s.known[id] != nil }

// keyLabel names attendance chains in key ids (chain.KeyID), so the same
// key has another id in the audit trail.
const keyLabel = "iop attendance key id"

// Keyed reports whether the Store appends HMAC-SHA256 links under a key.
func (s *Store) Keyed() bool { return s.keyID != "" }

// Errors of a keyed chain.
var (
	// ErrWrongKey: the program's chain was keyed with another key (or
	// with a key, and this Store has none): appending would break it. The
	// recorder keeps the event in its spool until the key is put right.
	ErrWrongKey = errors.New("attendance: the chain was written with another key")
	// ErrKeyRequired: the chain is keyed and this Store has no key to
	// verify it.
	ErrKeyRequired = errors.New("attendance: the chain is keyed (HMAC): set IOP_ATTENDANCE_KEY to verify it")
	// ErrBroken: Rebuild refused a chain that does not verify, which would
	// carry an edit into the rollups.
	ErrBroken = errors.New("attendance: the chain does not verify")
)

// Rules returns the rules the store applies.
func (s *Store) Rules() Rules { return s.opts.Rules }

// programsKey is the set of programs that have attendance events.
const programsKey = "iop:att:programs"

// keys names one program's keys. Braces make them one Redis Cluster hash
// slot, so that a transaction may span them.
type keys struct {
	prefix  string
	events  string // stream of events
	head    string // hash: hash, seq of the chain's last event; gen of the live rollups; key id, keyed_from
	ids     string // hash: event id -> seq (dedupe)
	open    string // hash: open segment id -> last-seen unix seconds
	zone    string // string: IANA zone name
	targets string // hash: sub (or "*" for the program) -> Targets JSON
	nextGen string // counter of rollup generations
}

func keysFor(program string) keys {
	p := "iop:att:{" + program + "}:"
	return keys{
		prefix: p, events: p + "events", head: p + "head", ids: p + "ids", open: p + "open",
		zone: p + "zone", targets: p + "targets", nextGen: p + "nextgen",
	}
}

// gen returns the prefix of a rollup generation's keys. Derived state
// (segments, indexes, rollups) lives under a generation so that Rebuild can
// write a fresh one and swap it in.
func (k keys) gen(g int64) string { return k.prefix + "g" + strconv.FormatInt(g, 10) + ":" }

// Receipt says what Append did.
type Receipt struct {
	Seq       int64 // the event's position in the program's chain
	Duplicate bool  // its ID was already stored: nothing changed
	Applied   bool  // it changed its segment (an event may be stored without effect, e.g. a second leave)
	// Sub is the person a correction is about (Store.Correct only).
	Sub string
}

// errSkip ends an append whose precondition no longer holds.
var errSkip = errors.New("precondition failed")

// Append stores e at the end of its program's chain and applies it to its
// segment and the rollups, atomically: concurrent nodes cannot fork the
// chain, and an ID already stored is a no-op (Receipt.Duplicate). e.At is
// truncated to the second. Errors wrapping ErrInvalid are permanent; others
// mean Redis is unreachable or failing, and the caller should keep e and
// retry it.
func (s *Store) Append(ctx context.Context, e Event) (Receipt, error) {
	e.At = e.At.UTC().Truncate(time.Second)
	if !e.Start.IsZero() || !e.End.IsZero() {
		e.Start, e.End = e.Start.UTC().Truncate(time.Second), e.End.UTC().Truncate(time.Second)
	}
	e.Seq = 0
	if err := e.check(); err != nil {
		return Receipt{}, err
	}
	rec, err := s.append(ctx, e, nil)
	if errors.Is(err, errSkip) {
		return rec, nil
	}
	return rec, err
}

// append runs the append transaction, retrying when another writer of the
// program got in first. cond, when set, must hold for the segment's
// last-seen time (and open state) or nothing is appended.
func (s *Store) append(ctx context.Context, e Event, cond func(lastSeen int64, open bool) bool) (Receipt, error) {
	k := keysFor(e.Program)
	var rec Receipt
	txf := func(tx *redis.Tx) error {
		rec = Receipt{}
		seq, err := tx.HGet(ctx, k.ids, e.ID).Int64()
		if err == nil {
			rec = Receipt{Seq: seq, Duplicate: true}
			return nil
		} else if err != redis.Nil {
			return err
		}
		h, err := readHead(ctx, tx, k)
		if err != nil {
			return err
		}
		lastSeen, open, err := readLastSeen(ctx, tx, k, e.Segment)
		if err != nil {
			return err
		}
		if cond != nil && !cond(lastSeen, open) {
			return errSkip
		}
		loc, err := s.zone(ctx, tx, e.Program)
		if err != nil {
			return err
		}
		gp := k.gen(h.gen)
		prev, err := readSegment(ctx, tx, gp, e.Segment)
		if err != nil {
			return err
		}
		e.Seq = h.seq + 1
		res := step(prev, &e, loc)
		var follow []result
		if e.Kind == KindCorrect && res.seg != nil {
			room, err := roomSegments(ctx, tx, gp, res.seg.Room)
			if err != nil {
				return err
			}
			res = clinicAdded(prev, res, room, loc)
			follow = followClinician(prev, res.seg, room, loc)
		}
		keyedFrom, err := s.keying(h, e.Seq)
		if err != nil {
			return err
		}
		body, err := json.Marshal(e)
		if err != nil {
			return err
		}
		hash := chain.Hash(s.opts.Key, h.hash, body)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			values := []any{"id", e.ID, "prev", h.hash, "hash", hash, "event", string(body)}
			if s.keyID != "" {
				values = append(values, "key", s.keyID)
			}
			p.XAdd(ctx, &redis.XAddArgs{Stream: k.events, Values: values})
			p.HSet(ctx, k.head, "hash", hash, "seq", e.Seq, "gen", h.gen)
			if keyedFrom > 0 {
				p.HSet(ctx, k.head, "key", s.keyID, "keyed_from", keyedFrom)
			}
			p.HSet(ctx, k.ids, e.ID, e.Seq)
			p.SAdd(ctx, programsKey, e.Program)
			for _, r := range append([]result{res}, follow...) {
				for _, o := range opsFor(r, &e, loc) {
					o.queue(ctx, p, gp)
				}
			}
			switch {
			case res.out == closed:
				p.HDel(ctx, k.open, e.Segment)
			case res.out == opened || res.out == reopened:
				p.HSet(ctx, k.open, e.Segment, e.At.Unix())
			case open && e.At.Unix() > lastSeen:
				p.HSet(ctx, k.open, e.Segment, e.At.Unix())
			}
			return nil
		})
		rec = Receipt{Seq: e.Seq, Applied: res.out != ignored}
		return err
	}
	for try := 0; ; try++ {
		err := s.rdb.Watch(ctx, txf, k.head, k.open)
		switch {
		case err == nil:
			return rec, nil
		case errors.Is(err, errSkip):
			return Receipt{}, errSkip
		case errors.Is(err, ErrWrongKey):
			return Receipt{}, fmt.Errorf("append attendance event %s to %s: %w", e.ID, e.Program, err)
		case !errors.Is(err, redis.TxFailedErr) || try >= 100:
			return Receipt{}, fmt.Errorf("append attendance event %s: %w", e.ID, err)
		}
		select { // another writer got in first: try again shortly
		case <-time.After(time.Duration(rand.IntN(5)+1) * time.Millisecond):
		case <-ctx.Done():
			return Receipt{}, fmt.Errorf("append attendance event %s: %w", e.ID, ctx.Err())
		}
	}
}

// keying says whether the event seq, appended to the chain whose head is
// h, is keyed: 0 when it is not, else the seq keying began at (seq itself
// for the first keyed event). A keyed chain stays keyed; its key changes
// only to Key from one of OldKeys (rotation): a node that holds neither the
// head's key nor its successor refuses to append.
func (s *Store) keying(h head, seq int64) (keyedFrom int64, err error) {
	switch {
	case h.key == "" && s.keyID == "":
		return 0, nil
	case h.key == "":
		return seq, nil // a keyed node's first event in this chain
	case s.keyID == "" || !s.knows(h.key):
		return 0, ErrWrongKey
	}
	return h.keyedFrom, nil
}

// chainHash links an unkeyed event to its predecessor: sha256 of the
// previous event's hash (hex, "" for the first) and the event's stored
// bytes.
func chainHash(prev string, body []byte) string { return chain.Hash(nil, prev, body) }

// head is the state of a program's chain.
type head struct {
	hash      string
	seq       int64
	gen       int64
	key       string // the key id of the chain's keyed part; "" if never keyed
	keyedFrom int64  // the first keyed event's seq; 0 if never keyed
}

func readHead(ctx context.Context, c redis.Cmdable, k keys) (head, error) {
	v, err := c.HMGet(ctx, k.head, "hash", "seq", "gen", "key", "keyed_from").Result()
	if err != nil {
		return head{}, err
	}
	str := func(i int) string { x, _ := v[i].(string); return x }
	h := head{hash: str(0), key: str(3)}
	h.seq, _ = strconv.ParseInt(str(1), 10, 64)
	h.gen, _ = strconv.ParseInt(str(2), 10, 64)
	h.keyedFrom, _ = strconv.ParseInt(str(4), 10, 64)
	return h, nil
}

// ChainHead is where a program's chain ends: its last event's sequence
// number and hash, and the id of the key that wrote it. Exports carry it
// and the audit trail records it, so that the chain can later be shown to
// still hold what was billed: a chain rewritten since no longer reaches
// this hash at this seq.
type ChainHead struct {
	Program   string `json:"program"`
	Seq       int64  `json:"seq"`
	Hash      string `json:"hash"`                 // "" for an empty chain
	Key       string `json:"key,omitempty"`        // chain.KeyID of the key; "" for an unkeyed chain
	KeyedFrom int64  `json:"keyed_from,omitempty"` // the first keyed event
}

// String is the head as exports write it: "chain PROGRAM " and Point.
func (h ChainHead) String() string { return "chain " + h.Program + " " + h.Point() }

// Point is the head as the audit trail records it (the entry names the
// program): "seq N hash H key K", key "none" for an unkeyed chain and
// "K from N" for one keyed from event N on, hash "none" for an empty one.
func (h ChainHead) Point() string {
	hash, key := h.Hash, h.Key
	if hash == "" {
		hash = "none"
	}
	if key == "" {
		key = "none"
	} else if h.KeyedFrom > 1 {
		key += " from " + strconv.FormatInt(h.KeyedFrom, 10)
	}
	return fmt.Sprintf("seq %d hash %s key %s", h.Seq, hash, key)
}

// Head returns a program's chain head.
func (s *Store) Head(ctx context.Context, program string) (ChainHead, error) {
	h, err := readHead(ctx, s.rdb, keysFor(program))
	if err != nil {
		return ChainHead{}, fmt.Errorf("read attendance chain head: %w", err)
	}
	return ChainHead{Program: program, Seq: h.seq, Hash: h.hash, Key: h.key, KeyedFrom: h.keyedFrom}, nil
}

func readLastSeen(ctx context.Context, c redis.Cmdable, k keys, seg string) (int64, bool, error) {
	v, err := c.HGet(ctx, k.open, seg).Int64()
	if err == redis.Nil {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return v, true, nil
}

func readSegment(ctx context.Context, c redis.Cmdable, gp, id string) (*Segment, error) {
	b, err := c.HGet(ctx, gp+"seg", id).Bytes()
	if err == redis.Nil {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s Segment
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode segment %s: %w", id, err)
	}
	return &s, nil
}

// heartbeatScript moves the last-seen time of the open segments named in
// ARGV[2:] forward to ARGV[1] and returns those that are not open.
var heartbeatScript = redis.NewScript(`
local missing = {}
local at = tonumber(ARGV[1])
for i = 2, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if not v then
    missing[#missing + 1] = ARGV[i]
  elseif tonumber(v) < at then
    redis.call('HSET', KEYS[1], ARGV[i], at)
  end
end
return missing
`)

// Heartbeat records that the open segments ids were still live at at (the
// recorder calls it every 15 s). It returns the ids that are not open: a
// segment the sweeper closed as lost while this node could not reach Redis.
// Sending a media event for it revives it (see KindMedia).
func (s *Store) Heartbeat(ctx context.Context, program string, ids []string, at time.Time) (missing []string, err error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, at.Unix())
	for _, id := range ids {
		args = append(args, id)
	}
	missing, err = heartbeatScript.Run(ctx, s.rdb, []string{keysFor(program).open}, args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("attendance heartbeat: %w", err)
	}
	return missing, nil
}

// OpenSegment is an open segment's id and last-seen time.
type OpenSegment struct {
	ID       string
	LastSeen time.Time
}

// OpenSegments returns a program's open segments.
func (s *Store) OpenSegments(ctx context.Context, program string) ([]OpenSegment, error) {
	m, err := s.rdb.HGetAll(ctx, keysFor(program).open).Result()
	if err != nil {
		return nil, fmt.Errorf("list open segments: %w", err)
	}
	out := make([]OpenSegment, 0, len(m))
	for id, v := range m {
		n, _ := strconv.ParseInt(v, 10, 64)
		out = append(out, OpenSegment{ID: id, LastSeen: time.Unix(n, 0).UTC()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Programs returns every program with attendance events.
func (s *Store) Programs(ctx context.Context) ([]string, error) {
	out, err := s.rdb.SMembers(ctx, programsKey).Result()
	if err != nil {
		return nil, fmt.Errorf("list attendance programs: %w", err)
	}
	sort.Strings(out)
	return out, nil
}

// SweepStale closes the program's open segments last seen before
// olderThan, each at its last-seen time with reason lost: a dead node's
// minutes are neither lost nor invented. The leave event's ID is derived
// from the segment and its last-seen time, so sweepers on several nodes
// close a segment once. It returns how many it closed.
func (s *Store) SweepStale(ctx context.Context, program string, olderThan time.Time) (int, error) {
	open, err := s.OpenSegments(ctx, program)
	if err != nil {
		return 0, err
	}
	limit := olderThan.Unix()
	n := 0
	for _, o := range open {
		ls := o.LastSeen.Unix()
		if ls > limit { // whole seconds: a segment last seen in the limit's second is stale too
			continue
		}
		e := Event{
			ID: fmt.Sprintf("sweep:%s:%d", o.ID, ls), Kind: KindLeave, Program: program,
			Segment: o.ID, At: o.LastSeen, Reason: ReasonLost, Node: "sweeper",
		}
		rec, err := s.append(ctx, e, func(lastSeen int64, open bool) bool { return open && lastSeen <= limit })
		if errors.Is(err, errSkip) {
			continue // a heartbeat or event got in first
		}
		if err != nil {
			return n, err
		}
		if rec.Applied {
			n++
		}
	}
	return n, nil
}

// Sweep runs SweepStale on every program; one sweeper covers them all.
func (s *Store) Sweep(ctx context.Context, olderThan time.Time) (int, error) {
	programs, err := s.Programs(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, p := range programs {
		n, err := s.SweepStale(ctx, p, olderThan)
		total += n
		if err != nil {
			return total, fmt.Errorf("sweep %s: %w", p, err)
		}
	}
	return total, nil
}

// escapeGlob quotes the glob characters of a key prefix for SCAN MATCH.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
