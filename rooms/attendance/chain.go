package attendance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"iop/rooms/chain"
)

// Problems Verify reports (the same as package chain's).
const (
	// ProblemAltered: the event's bytes no longer match its hash, or its
	// hash was recomputed and no longer matches what its successor (or
	// the chain's head) committed to.
	ProblemAltered = chain.ProblemAltered
	// ProblemMissingBefore: one or more events before this one were
	// removed.
	ProblemMissingBefore = chain.ProblemMissingBefore
	// ProblemMissingAfter: events after this one (the last in the stream)
	// were removed; StreamID is empty when the stream is empty.
	ProblemMissingAfter = chain.ProblemMissingAfter
)

// Finding names the first event where a program's chain breaks.
type Finding struct {
	StreamID string `json:"stream_id"` // the Redis stream entry id
	EventID  string `json:"event_id"`
	Seq      int64  `json:"seq"`
	Problem  string `json:"problem"`
}

// Verification is the result of walking a program's chain and comparing
// its rollups with its events.
type Verification struct {
	Program string `json:"program"`
	Events  int64  `json:"events"` // entries walked
	Seq     int64  `json:"seq"`    // the head's sequence number
	Head    string `json:"head"`   // the head's hash: record it elsewhere to anchor the chain
	// Key is the id of the key that wrote the chain's keyed part (from
	// KeyedFrom on); "" for a chain that was never keyed.
	Key       string `json:"key,omitempty"`
	KeyedFrom int64  `json:"keyed_from,omitempty"`
	// WrongKey: the chain's head says another key wrote it, so its keyed
	// part looks altered under this Store's key.
	WrongKey bool           `json:"wrong_key,omitempty"`
	OK       bool           `json:"ok"`               // the chain holds and every rollup matches its events
	First    *Finding       `json:"first,omitempty"`  // the chain's first problem
	Rollups  int            `json:"rollups"`          // stored rollup keys compared (when the chain holds)
	Rollup   *RollupFinding `json:"rollup,omitempty"` // the first stored rollup that differs from the events
}

// RollupFinding names the first stored rollup (or segment, or index) that
// is not what the events give: edited, stale (a zone changed since) or
// left over. Rebuild puts it right.
type RollupFinding struct {
	// Key is the rollup's key within the program's live generation:
	// d:SUB:DATE (a day), w:SUB:WEEK (a week), seg (segments), or an index
	// (room:, wseg:, people:, pseg:).
	Key    string `json:"key"`
	Field  string `json:"field,omitempty"` // the hash field or set member that differs
	Stored string `json:"stored"`          // as stored ("" when missing)
	Events string `json:"events"`          // as the events give it ("" when they give none)
}

func (f *RollupFinding) String() string {
	show := func(s string) string {
		if s == "" {
			return "(none)"
		}
		return s
	}
	field := ""
	if f.Field != "" {
		field = " " + f.Field
	}
	return fmt.Sprintf("%s%s: stored %s, the events give %s", f.Key, field, show(f.Stored), show(f.Events))
}

// entry is one stream entry of the chain.
type entry struct {
	streamID string
	id       string
	prev     string
	hash     string
	body     string
	key      string // the id of the key that wrote it; "" unkeyed (or keyed before rotation existed)
}

func decodeEntry(x redis.XMessage) (entry, bool) {
	e := entry{streamID: x.ID}
	e.key, _ = x.Values["key"].(string)
	var ok1, ok2, ok3, ok4 bool
	e.id, ok1 = x.Values["id"].(string)
	e.prev, ok2 = x.Values["prev"].(string)
	e.hash, ok3 = x.Values["hash"].(string)
	e.body, ok4 = x.Values["event"].(string)
	return e, ok1 && ok2 && ok3 && ok4
}

// walk calls f for every entry of a program's stream after the stream id
// after ("-" for all), in order, until f returns false.
func (s *Store) walk(ctx context.Context, program, after string, f func(redis.XMessage) (bool, error)) error {
	return chain.Walk(ctx, s.rdb, "attendance stream", keysFor(program).events, after, f)
}

// replay walks a program's chain in stream order, checking each link as
// Verify reports it and deriving the segments and rollups the events
// describe as Rebuild writes them: both read the same events the same way.
type replay struct {
	loc       *time.Location
	keys      map[string][]byte // the Store's keys by id: events from keyedFrom on are HMACs under one of them
	keyedFrom int64             // the first keyed event's seq, learnt from the stream; 0 while none
	c         *chain.Checker[entry]
	m         *model
	segs      map[string]*Segment
	after     string // the last stream id walked ("-" before the first)
	seq       int64  // the last event's seq
	events    int64  // entries walked
	first     *Finding
}

func (s *Store) newReplay(loc *time.Location) *replay {
	return &replay{
		loc: loc, keys: s.known, c: chain.NewChecker[entry](1, ""), m: newModel(),
		segs: map[string]*Segment{}, after: "-",
	}
}

// next checks one stream entry's link (until the first break) and applies
// its event to the model. It returns false when the event cannot be
// decoded, so cannot be replayed.
func (r *replay) next(x redis.XMessage) bool {
	en, ok := decodeEntry(x)
	r.events++
	r.after = x.ID
	var e Event
	ok = ok && json.Unmarshal([]byte(en.body), &e) == nil && e.ID == en.id
	if r.first == nil {
		l := chain.Link{Prev: en.prev, Hash: en.hash, Seq: e.Seq, Intact: ok && r.intact(e.Seq, en)}
		if at, seq, problem := r.c.Next(en, l); problem != "" {
			r.fail(at, seq, problem)
		}
	}
	if !ok {
		return false
	}
	prev := r.segs[e.Segment]
	res := step(prev, &e, r.loc)
	var follow []result
	if e.Kind == KindCorrect && res.seg != nil {
		var room []*Segment
		for _, s := range r.segs {
			if s.Room == res.seg.Room {
				room = append(room, s)
			}
		}
		res = clinicAdded(prev, res, room, r.loc)
		follow = followClinician(prev, res.seg, room, r.loc)
	}
	for _, x := range append([]result{res}, follow...) {
		if x.seg != nil {
			r.segs[x.seg.ID] = x.seg
		}
		r.m.apply(opsFor(x, &e, r.loc))
	}
	r.seq = e.Seq
	return true
}

// intact reports whether an entry's hash matches its bytes. A chain
// written without a key is plain SHA-256 throughout; from the first event a
// keyed node appended on, every event must be an HMAC under the key (a
// node refuses to append to a keyed chain without it). Only the key holder
// can write an HMAC, so the stream itself says where keying began.
//
// Each keyed entry names the id of its key (chain.KeyID), so that a chain
// whose key was rotated verifies with the old keys for its older part
// (Options.OldKeys); an entry from before key ids were stored is tried
// under each key held. An entry whose key is not held does not verify.
func (r *replay) intact(seq int64, en entry) bool {
	if r.keyedFrom == 0 && chain.Hash(nil, en.prev, []byte(en.body)) == en.hash {
		return true
	}
	ok := false
	if k := r.keys[en.key]; k != nil {
		ok = chain.Hash(k, en.prev, []byte(en.body)) == en.hash
	} else if en.key == "" {
		for _, k := range r.keys {
			if chain.Hash(k, en.prev, []byte(en.body)) == en.hash {
				ok = true
				break
			}
		}
	}
	if ok && r.keyedFrom == 0 {
		r.keyedFrom = seq
	}
	return ok
}

func (r *replay) fail(at entry, seq int64, problem string) {
	r.first = &Finding{StreamID: at.streamID, EventID: at.id, Seq: seq, Problem: problem}
}

// end checks the walked chain against the head (read after the walk's
// last event was written): the same last hash, and keying recorded from
// the event the stream says it began at.
func (r *replay) end(h head) {
	if r.first != nil {
		return
	}
	if at, seq, problem := r.c.End(h.seq, h.hash); problem != "" {
		r.fail(at, seq, problem)
		return
	}
	if h.keyedFrom != r.keyedFrom || (h.key != "") != (r.keyedFrom > 0) {
		at, seq, _ := r.c.Last()
		r.fail(at, seq, ProblemAltered)
	}
}

// Verify walks a program's chain and reports the first event that was
// altered or whose predecessors were removed, then recomputes the rollups
// from the verified events and compares them with the stored ones.
//
// Each stored event carries its sequence number, its predecessor's hash
// and its own hash (SHA-256 of the predecessor's hash and the event's
// bytes, or from the first event a keyed node appended on, their
// HMAC-SHA256 under Options.Key), so an edit in place, a removed entry and
// a removed tail are all found; in the keyed part so is an edit whose
// hashes were recomputed, which needs the key. An unkeyed chain rewritten
// from some point on, hashes and all, is found only against a head recorded
// elsewhere (every export records it: ChainHead). A keyed chain cannot be
// verified without its key (ErrKeyRequired).
func (s *Store) Verify(ctx context.Context, program string) (Verification, error) {
	k := keysFor(program)
	h, err := readHead(ctx, s.rdb, k)
	if err != nil {
		return Verification{}, fmt.Errorf("read chain head: %w", err)
	}
	v := Verification{Program: program, Key: h.key, KeyedFrom: h.keyedFrom, WrongKey: h.key != "" && !s.knows(h.key)}
	if h.key != "" && len(s.known) == 0 {
		return v, fmt.Errorf("verify the attendance of %s: %w", program, ErrKeyRequired)
	}
	loc, err := s.Zone(ctx, program)
	if err != nil {
		return v, err
	}
	r := s.newReplay(loc)
	for try := 0; ; try++ {
		v.Seq, v.Head = h.seq, h.hash
		if r.seq < h.seq {
			err = s.walk(ctx, program, r.after, func(x redis.XMessage) (bool, error) {
				r.next(x)
				return r.first == nil && r.seq < h.seq, nil // later entries were appended after the head was read
			})
			if err != nil {
				return v, err
			}
		}
		r.end(h)
		v.Events = r.events
		if r.first != nil {
			v.First = r.first
			return v, nil
		}
		// The chain holds up to h: compare the rollups it describes with
		// the stored ones, unless an append or a rebuild got in between.
		stored, err := readGen(ctx, s.rdb, k.gen(h.gen))
		if err != nil {
			return v, err
		}
		h2, err := readHead(ctx, s.rdb, k)
		if err != nil {
			return v, fmt.Errorf("read chain head: %w", err)
		}
		if h2 == h {
			v.Rollups = len(stored.hashes) + len(stored.sets) + len(stored.other)
			v.Rollup = r.m.diff(stored)
			v.OK = v.Rollup == nil
			return v, nil
		}
		if try >= 20 {
			return v, fmt.Errorf("verify the attendance of %s: the rollups kept changing while being read (run it again when fewer sessions are live)", program)
		}
		h = h2
	}
}

// RebuildResult says what Rebuild did.
type RebuildResult struct {
	Events     int64 `json:"events"`     // events replayed
	Segments   int   `json:"segments"`   // segments derived
	Generation int64 `json:"generation"` // the rollup generation now live
	// Broken is the chain's first break when RebuildForce rebuilt a chain
	// that does not verify; nil when it verified.
	Broken *Finding `json:"broken,omitempty"`
	// Unverified: RebuildForce rebuilt a keyed chain without its key (or
	// with another), so its links were not checked.
	Unverified bool `json:"unverified,omitempty"`
}

// errBehind means the stream grew while rebuilding.
var errBehind = errors.New("behind")

// Rebuild recomputes a program's segments, indexes and rollups from its
// event stream into a fresh generation of keys, then swaps it in atomically
// and deletes the old one. It checks the chain as it replays it, as Verify
// does, and refuses to carry a broken chain (an edited event, a removed
// one) into the rollups: ErrBroken, or ErrKeyRequired / ErrWrongKey for a
// keyed chain it cannot check; nothing is changed then. RebuildForce
// rebuilds anyway. Appends may continue meanwhile: Rebuild catches up with
// events that arrive before the swap. The open-segment list and its
// heartbeat times are kept as they are.
func (s *Store) Rebuild(ctx context.Context, program string) (RebuildResult, error) {
	return s.rebuild(ctx, program, false)
}

// RebuildForce is Rebuild from whatever the stream holds, even when the
// chain does not verify; RebuildResult says what was wrong.
func (s *Store) RebuildForce(ctx context.Context, program string) (RebuildResult, error) {
	return s.rebuild(ctx, program, true)
}

func (s *Store) rebuild(ctx context.Context, program string, force bool) (res RebuildResult, err error) {
	k := keysFor(program)
	loc, err := s.Zone(ctx, program)
	if err != nil {
		return RebuildResult{}, err
	}
	h, err := readHead(ctx, s.rdb, k)
	if err != nil {
		return RebuildResult{}, fmt.Errorf("rebuild: %w", err)
	}
	if h.key != "" && !s.knows(h.key) {
		if !force {
			kerr := ErrWrongKey
			if len(s.known) == 0 {
				kerr = ErrKeyRequired
			}
			return RebuildResult{}, fmt.Errorf("rebuild the attendance of %s: %w", program, kerr)
		}
		res.Unverified = true
	}
	gen, err := s.rdb.Incr(ctx, k.nextGen).Result()
	if err != nil {
		return RebuildResult{}, fmt.Errorf("rebuild: %w", err)
	}
	gp := k.gen(gen)
	res.Generation = gen
	swapped := false
	defer func() {
		if !swapped { // refused or failed: drop the half-built generation
			_ = s.deleteGen(ctx, k, gen)
		}
	}()
	r := s.newReplay(loc)
	refuse := func() error {
		f := r.first
		return fmt.Errorf("rebuild the attendance of %s: %w: seq %d (event %s, stream entry %s) %s; nothing was changed (run iopctl attendance verify)",
			program, ErrBroken, f.Seq, f.EventID, f.StreamID, f.Problem)
	}
	for try := 0; try < 100; try++ {
		err := s.walk(ctx, program, r.after, func(x redis.XMessage) (bool, error) {
			if !r.next(x) && force {
				return false, fmt.Errorf("rebuild: unreadable event at %s (run verify)", x.ID)
			}
			return r.first == nil || force, nil
		})
		if err != nil {
			return res, err
		}
		if r.first != nil && !force {
			return res, refuse()
		}
		if err := r.m.flush(ctx, s.rdb, gp); err != nil {
			return res, fmt.Errorf("rebuild: write rollups: %w", err)
		}
		var old int64
		err = s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			h, err := readHead(ctx, tx, k)
			if err != nil {
				return err
			}
			if h.seq != r.seq {
				return errBehind
			}
			if !res.Unverified {
				r.end(h)
				if r.first != nil && !force {
					return errBroken
				}
			}
			old = h.gen
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				// Writing the head also fails any append that read the
				// old generation, so it retries against the new one.
				p.HSet(ctx, k.head, "gen", gen)
				return nil
			})
			return err
		}, k.head)
		if errors.Is(err, errBehind) || errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if errors.Is(err, errBroken) {
			return res, refuse()
		}
		if err != nil {
			return res, fmt.Errorf("rebuild: swap: %w", err)
		}
		swapped = true
		res.Events, res.Segments = r.events, len(r.segs)
		if !res.Unverified {
			res.Broken = r.first
		}
		if err := s.deleteGen(ctx, k, old); err != nil {
			return res, err
		}
		return res, nil
	}
	return res, fmt.Errorf("rebuild %s: the stream kept growing", program)
}

// errBroken ends a rebuild's swap: the chain does not verify.
var errBroken = errors.New("broken")

// deleteGen removes a rollup generation's keys.
func (s *Store) deleteGen(ctx context.Context, k keys, gen int64) error {
	it := s.rdb.Scan(ctx, 0, escapeGlob(k.gen(gen))+"*", 500).Iterator()
	var batch []string
	for it.Next(ctx) {
		batch = append(batch, it.Val())
		if len(batch) == 500 {
			if err := s.rdb.Unlink(ctx, batch...).Err(); err != nil {
				return fmt.Errorf("delete old rollups: %w", err)
			}
			batch = batch[:0]
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("list old rollups: %w", err)
	}
	if len(batch) > 0 {
		if err := s.rdb.Unlink(ctx, batch...).Err(); err != nil {
			return fmt.Errorf("delete old rollups: %w", err)
		}
	}
	return nil
}
