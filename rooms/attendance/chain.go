package attendance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

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

// Verification is the result of walking a program's chain.
type Verification struct {
	Program string   `json:"program"`
	Events  int64    `json:"events"` // entries walked
	Seq     int64    `json:"seq"`    // the head's sequence number
	Head    string   `json:"head"`   // the head's hash: record it elsewhere to anchor the chain
	OK      bool     `json:"ok"`
	First   *Finding `json:"first,omitempty"` // the first problem, when not OK
}

// entry is one stream entry of the chain.
type entry struct {
	streamID string
	id       string
	prev     string
	hash     string
	body     string
}

func decodeEntry(x redis.XMessage) (entry, bool) {
	e := entry{streamID: x.ID}
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

// errStop ends a walk early.
var errStop = errors.New("stop")

// Verify walks a program's chain and reports the first event that was
// altered or whose predecessors were removed. Each stored event carries its
// sequence number, its predecessor's hash and its own hash (sha256 of the
// predecessor's hash and the event's bytes), so an edit in place, a removed
// entry and a removed tail are all found. A rewrite of the whole chain from
// some point on is found only against a head recorded elsewhere (Head).
func (s *Store) Verify(ctx context.Context, program string) (Verification, error) {
	k := keysFor(program)
	h, err := readHead(ctx, s.rdb, k)
	if err != nil {
		return Verification{}, fmt.Errorf("read chain head: %w", err)
	}
	v := Verification{Program: program, Seq: h.seq, Head: h.hash}
	c := chain.NewChecker[entry](1, "")
	fail := func(x entry, seq int64, problem string) error {
		v.First = &Finding{StreamID: x.streamID, EventID: x.id, Seq: seq, Problem: problem}
		return errStop
	}
	err = s.walk(ctx, program, "-", func(m redis.XMessage) (bool, error) {
		x, ok := decodeEntry(m)
		v.Events++
		l := chain.Link{Prev: x.prev, Hash: x.hash}
		if ok {
			var e Event
			l.Intact = json.Unmarshal([]byte(x.body), &e) == nil && e.ID == x.id && chainHash(x.prev, []byte(x.body)) == x.hash
			l.Seq = e.Seq
		}
		if at, seq, problem := c.Next(x, l); problem != "" {
			return false, fail(at, seq, problem)
		}
		return l.Seq < h.seq, nil // later entries were appended after the head was read
	})
	if errors.Is(err, errStop) {
		return v, nil
	}
	if err != nil {
		return v, err
	}
	if at, seq, problem := c.End(h.seq, h.hash); problem != "" {
		_ = fail(at, seq, problem)
		return v, nil
	}
	v.OK = true
	return v, nil
}

// RebuildResult says what Rebuild did.
type RebuildResult struct {
	Events     int64 `json:"events"`     // events replayed
	Segments   int   `json:"segments"`   // segments derived
	Generation int64 `json:"generation"` // the rollup generation now live
}

// errBehind means the stream grew while rebuilding.
var errBehind = errors.New("behind")

// Rebuild recomputes a program's segments, indexes and rollups from its
// event stream into a fresh generation of keys, then swaps it in atomically
// and deletes the old one. Appends may continue meanwhile: Rebuild catches
// up with events that arrive before the swap. The open-segment list and
// its heartbeat times are kept as they are.
func (s *Store) Rebuild(ctx context.Context, program string) (RebuildResult, error) {
	k := keysFor(program)
	loc, err := s.Zone(ctx, program)
	if err != nil {
		return RebuildResult{}, err
	}
	gen, err := s.rdb.Incr(ctx, k.nextGen).Result()
	if err != nil {
		return RebuildResult{}, fmt.Errorf("rebuild: %w", err)
	}
	gp := k.gen(gen)
	m := newModel()
	segs := map[string]*Segment{}
	res := RebuildResult{Generation: gen}
	after := "-"
	var seq int64
	for try := 0; try < 100; try++ {
		err := s.walk(ctx, program, after, func(x redis.XMessage) (bool, error) {
			en, ok := decodeEntry(x)
			var e Event
			if !ok || json.Unmarshal([]byte(en.body), &e) != nil {
				return false, fmt.Errorf("rebuild: unreadable event at %s (run verify)", x.ID)
			}
			r := step(segs[e.Segment], &e, loc)
			if r.seg != nil {
				segs[e.Segment] = r.seg
			}
			m.apply(opsFor(r, &e, loc))
			after, seq = x.ID, e.Seq
			res.Events++
			return true, nil
		})
		if err != nil {
			return res, err
		}
		if err := m.flush(ctx, s.rdb, gp); err != nil {
			return res, fmt.Errorf("rebuild: write rollups: %w", err)
		}
		var old int64
		err = s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			h, err := readHead(ctx, tx, k)
			if err != nil {
				return err
			}
			if h.seq != seq {
				return errBehind
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
		if err != nil {
			return res, fmt.Errorf("rebuild: swap: %w", err)
		}
		res.Segments = len(segs)
		if err := s.deleteGen(ctx, k, old); err != nil {
			return res, err
		}
		return res, nil
	}
	return res, fmt.Errorf("rebuild %s: the stream kept growing", program)
}

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

// model is derived state in memory, built from the same ops as live
// appends write.
type model struct {
	hashes map[string]map[string]string
	sets   map[string]map[string]bool
	dirty  map[string]bool
}

func newModel() *model {
	return &model{hashes: map[string]map[string]string{}, sets: map[string]map[string]bool{}, dirty: map[string]bool{}}
}

func (m *model) apply(ops []op) {
	for _, o := range ops {
		m.dirty[o.key] = true
		switch o.kind {
		case opIncr, opSet:
			h := m.hashes[o.key]
			if h == nil {
				h = map[string]string{}
				m.hashes[o.key] = h
			}
			if o.kind == opSet {
				h[o.field] = o.value
			} else {
				n, _ := strconv.ParseInt(h[o.field], 10, 64)
				h[o.field] = strconv.FormatInt(n+o.n, 10)
			}
		case opAdd:
			set := m.sets[o.key]
			if set == nil {
				set = map[string]bool{}
				m.sets[o.key] = set
			}
			set[o.value] = true
		}
	}
}

// flush writes the keys changed since the last flush under prefix gp.
func (m *model) flush(ctx context.Context, c redis.Cmdable, gp string) error {
	p := c.Pipeline()
	n := 0
	for key := range m.dirty {
		p.Del(ctx, gp+key)
		if h := m.hashes[key]; len(h) > 0 {
			args := make([]any, 0, 2*len(h))
			for f, v := range h {
				args = append(args, f, v)
			}
			p.HSet(ctx, gp+key, args...)
		}
		if set := m.sets[key]; len(set) > 0 {
			args := make([]any, 0, len(set))
			for v := range set {
				args = append(args, v)
			}
			p.SAdd(ctx, gp+key, args...)
		}
		if n++; n%200 == 0 {
			if _, err := p.Exec(ctx); err != nil {
				return err
			}
		}
	}
	m.dirty = map[string]bool{}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	return nil
}
