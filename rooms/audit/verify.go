package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"iop/rooms/chain"
)

// Problems Verify reports (package chain's).
const (
	// ProblemAltered: the entry's bytes no longer match its hash, or its
	// hash was recomputed and no longer matches what its successor (or the
	// chain's head) committed to.
	ProblemAltered = chain.ProblemAltered
	// ProblemMissingBefore: entries before this one were removed (and no
	// trim recorded in the chain removed them).
	ProblemMissingBefore = chain.ProblemMissingBefore
	// ProblemMissingAfter: entries after this one (the last in the stream)
	// were removed; StreamID is empty when none is left.
	ProblemMissingAfter = chain.ProblemMissingAfter
)

// Finding names the first entry where a program's chain breaks.
type Finding struct {
	StreamID string `json:"stream_id"` // the Redis stream entry id (Entry.ID)
	Seq      int64  `json:"seq"`
	Problem  string `json:"problem"`
}

// Verification is the result of walking a program's chain.
type Verification struct {
	Program string `json:"program"`
	Entries int64  `json:"entries"` // entries checked, from the anchor on
	Seq     int64  `json:"seq"`     // the head's sequence number
	Head    string `json:"head"`    // the head's hash: record it elsewhere to anchor the chain
	Anchor  int64  `json:"anchor"`  // the first entry kept: 1 unless Trim removed older ones
	Keyed   bool   `json:"keyed"`   // checked as HMAC-SHA256 under the Log's key
	// WrongKey: the chain's head says another key (or none) wrote it, so
	// every entry looks altered under this Log's key.
	WrongKey bool     `json:"wrong_key,omitempty"`
	OK       bool     `json:"ok"`
	First    *Finding `json:"first,omitempty"` // the first problem, when not OK
}

// trimDetail is the Detail of a trim entry: entries before the anchor
// sequence number were removed; the anchor's predecessor hash was this.
const trimDetail = "anchor %d %s"

// errStop ends a walk early.
var errStop = errors.New("stop")

// Verify walks a program's chain and reports the first entry that was
// altered, or whose predecessors or successors were removed. Each entry's
// hash covers its predecessor's hash and its stored bytes (HMAC-SHA256
// under Options.Key when set), so an edit in place, a removed entry and a
// removed tail are found; with a key, so is a chain recomputed by someone
// without it. After a Trim the chain starts at its anchor: the first kept
// entry must carry the anchor's recorded predecessor hash, and a trim
// entry in the chain must name that anchor, so removing more entries from
// the start is found too. A rewrite of the whole chain (without a key),
// or a removed tail with the head rolled back, is found only against a
// head recorded elsewhere (Verification.Head). A keyed chain cannot be
// verified without its key (ErrKeyRequired).
func (l *Log) Verify(ctx context.Context, program string) (Verification, error) {
	if err := checkProgram(program); err != nil {
		return Verification{}, err
	}
	k := keysFor(program)
	h, err := readHead(ctx, l.rdb, k)
	if err != nil {
		return Verification{}, err
	}
	v := Verification{
		Program: program, Seq: h.seq, Head: h.hash, Anchor: h.anchorSeq, Keyed: l.Keyed(),
		WrongKey: h.seq > 0 && h.key != l.keyID,
	}
	if h.key != "" && !l.Keyed() {
		return v, fmt.Errorf("verify the audit trail of %s: %w", program, ErrKeyRequired)
	}
	c := chain.NewChecker[string](h.anchorSeq, h.anchorPrev)
	confirmed := h.anchorSeq == 1 // a cut chain must say where it was cut
	anchor := fmt.Sprintf(trimDetail, h.anchorSeq, h.anchorPrev)
	var first string // the first entry checked
	fail := func(id string, seq int64, problem string) error {
		v.First = &Finding{StreamID: id, Seq: seq, Problem: problem}
		return errStop
	}
	err = chain.Walk(ctx, l.rdb, "audit trail", k.stream, "-", func(x redis.XMessage) (bool, error) {
		e, link, _ := l.decode(program, x)
		if link.Intact && link.Seq < h.anchorSeq {
			return true, nil // left by an interrupted Trim: no longer part of the chain
		}
		v.Entries++
		if v.Entries == 1 {
			first = x.ID
			if link.Intact && link.Seq == h.anchorSeq && link.Prev != h.anchorPrev {
				return false, fail(x.ID, link.Seq, ProblemAltered)
			}
		}
		if id, seq, problem := c.Next(x.ID, link); problem != "" {
			return false, fail(id, seq, problem)
		}
		if e.Action == ActionTrim && e.Detail == anchor {
			confirmed = true
		}
		return link.Seq < h.seq, nil // later entries were appended after the head was read
	})
	if errors.Is(err, errStop) {
		return v, nil
	}
	if err != nil {
		return v, err
	}
	if id, seq, problem := c.End(h.seq, h.hash); problem != "" {
		_ = fail(id, seq, problem)
		return v, nil
	}
	if !confirmed {
		_ = fail(first, h.anchorSeq, ProblemMissingBefore)
		return v, nil
	}
	v.OK = true
	return v, nil
}

// anchorScript moves a chain's anchor forward (never back). KEYS: head.
// ARGV: the anchor's sequence number and predecessor hash.
var anchorScript = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], 'anchor_seq') or '1')
if tonumber(ARGV[1]) > cur then
  redis.call('HSET', KEYS[1], 'anchor_seq', ARGV[1], 'anchor_prev', ARGV[2])
  return 1
end
return 0
`)

// Trim applies retention to a program's trail: it removes the entries
// older than Options.Retention from its start (up to the first entry that
// is not) and returns how many it removed. It first verifies the chain
// and refuses to remove anything from one that does not verify
// (ErrBroken): that would destroy the evidence. The cut is recorded in the
// chain as a trim entry naming the new anchor (the first kept entry's
// sequence number and predecessor hash) before anything is removed, so the
// chain still verifies afterwards and a removal that no trim entry
// accounts for is still found. A Trim interrupted midway is completed by
// the next one. Trim refuses a retention below MinRetention (ErrRetention).
func (l *Log) Trim(ctx context.Context, program string) (removed int, err error) {
	if err := checkProgram(program); err != nil {
		return 0, err
	}
	if l.opts.Retention < MinRetention {
		return 0, fmt.Errorf("trim the audit trail of %s: %w (%v)", program, ErrRetention, l.opts.Retention)
	}
	v, err := l.Verify(ctx, program)
	if err != nil {
		return 0, err
	}
	if !v.OK {
		f := v.First
		return 0, fmt.Errorf("trim the audit trail of %s: %w: seq %d (entry %s) %s", program, ErrBroken, f.Seq, f.StreamID, f.Problem)
	}
	k := keysFor(program)
	h, err := readHead(ctx, l.rdb, k)
	if err != nil {
		return 0, err
	}
	now := l.opts.Now()
	cutoff := now.Add(-l.opts.Retention)
	var lastID, lastHash string // the last entry to remove
	var lastSeq int64
	err = chain.Walk(ctx, l.rdb, "audit trail", k.stream, "-", func(x redis.XMessage) (bool, error) {
		e, link, ok := l.decode(program, x)
		if !ok {
			return false, fmt.Errorf("%w %s in the trail of %s (run verify)", ErrUnreadable, x.ID, program)
		}
		if link.Seq < h.anchorSeq { // left by an interrupted trim
			lastID = x.ID
			return true, nil
		}
		if !e.At.Before(cutoff) {
			return false, nil
		}
		lastID, lastSeq, lastHash = x.ID, e.Seq, e.Hash
		return e.Seq < h.seq, nil
	})
	if err != nil {
		return 0, err
	}
	if lastID == "" {
		return 0, nil
	}
	if lastSeq > 0 {
		// Say in the chain where it will begin, then begin there.
		r := record{
			At: now.UTC().Truncate(time.Millisecond), Program: program, Action: ActionTrim,
			Detail: fmt.Sprintf(trimDetail, lastSeq+1, lastHash),
		}
		if _, err := l.append(ctx, r); err != nil {
			return 0, fmt.Errorf("trim the audit trail of %s: %w", program, err)
		}
		if err := anchorScript.Run(ctx, l.rdb, []string{k.head}, lastSeq+1, lastHash).Err(); err != nil {
			return 0, fmt.Errorf("trim the audit trail of %s: move its anchor: %w", program, err)
		}
	}
	for {
		page, err := l.rdb.XRangeN(ctx, k.stream, "-", lastID, 500).Result()
		if err != nil {
			return removed, fmt.Errorf("trim the audit trail of %s: %w", program, err)
		}
		if len(page) == 0 {
			return removed, nil
		}
		ids := make([]string, len(page))
		for i, x := range page {
			ids[i] = x.ID
		}
		n, err := l.rdb.XDel(ctx, k.stream, ids...).Result()
		if err != nil {
			return removed, fmt.Errorf("trim the audit trail of %s: %w", program, err)
		}
		removed += int(n)
	}
}
