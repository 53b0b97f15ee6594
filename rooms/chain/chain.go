// Package chain links the entries of an append-only Redis stream by hash,
// and finds the first place where such a chain was altered or cut. The
// attendance event stream and the audit trail are both chains.
//
// Each entry stores its sequence number (1, 2, 3...), its predecessor's
// hash ("" for the first) and its own hash: Hash of the predecessor's hash
// and the entry's stored bytes. An entry edited in place, removed, or
// removed from the end is then found by walking the stream with a Checker.
package chain

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/redis/go-redis/v9"
)

// Problems a Checker reports.
const (
	// ProblemAltered: the entry's bytes no longer match its hash, or its
	// hash was recomputed and no longer matches what its successor (or the
	// chain's head) committed to.
	ProblemAltered = "altered"
	// ProblemMissingBefore: one or more entries before this one were
	// removed.
	ProblemMissingBefore = "missing_before"
	// ProblemMissingAfter: entries after this one (the last in the stream)
	// were removed.
	ProblemMissingAfter = "missing_after"
)

// Hash links an entry to its predecessor: the hex SHA-256 of prev (the
// predecessor's hash in hex, "" for the first entry), a newline and body,
// or with a non-empty key their HMAC-SHA256 under key, which nobody without
// the key can recompute after an edit.
func Hash(key []byte, prev string, body []byte) string {
	var h hash.Hash
	if len(key) > 0 {
		h = hmac.New(sha256.New, key)
	} else {
		h = sha256.New()
	}
	h.Write([]byte(prev))
	h.Write([]byte{'\n'})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// Link is what a Checker needs of one stored entry.
type Link struct {
	Seq    int64  // its sequence number as stored in its body
	Prev   string // the predecessor's hash it stores
	Hash   string // its own hash as stored
	Intact bool   // its body decodes and Hash matches it
}

// Checker walks a chain's entries in stream order and reports the first
// break. P is whatever the caller uses to name an entry (its stream id...).
type Checker[P any] struct {
	want    int64  // the next entry's sequence number
	running string // the hash the next entry must name as its predecessor
	last    P      // the last entry that checked out
	lastSeq int64
	n       int64
}

// NewChecker returns a Checker for a chain whose first entry has sequence
// number seq and stores prev as its predecessor's hash: 1 and "" for a
// chain that was never cut.
func NewChecker[P any](seq int64, prev string) *Checker[P] {
	return &Checker[P]{want: seq, running: prev, lastSeq: seq - 1}
}

// Next checks the next entry, named pos. On a break it returns the problem
// and the entry to name with its sequence number: pos itself, or the entry
// before it when that one was rewritten with a recomputed hash.
func (c *Checker[P]) Next(pos P, l Link) (at P, seq int64, problem string) {
	c.n++
	switch {
	case !l.Intact:
		return pos, l.Seq, ProblemAltered
	case l.Seq > c.want:
		return pos, l.Seq, ProblemMissingBefore
	case l.Seq < c.want:
		return pos, l.Seq, ProblemAltered
	case l.Prev != c.running:
		// This entry is intact, but its predecessor's hash is not the one
		// it was chained to: the predecessor was rewritten with a
		// recomputed hash. (For the first entry walked that names the zero
		// P: callers that can say more check the first link themselves.)
		return c.last, c.lastSeq, ProblemAltered
	}
	c.running, c.last, c.lastSeq = l.Hash, pos, l.Seq
	c.want++
	return at, 0, ""
}

// End checks the walked chain against its head (the last entry's sequence
// number and hash as recorded when the walk began). On a break it names
// the last entry that checked out (the zero P when there was none).
func (c *Checker[P]) End(headSeq int64, headHash string) (at P, seq int64, problem string) {
	switch {
	case c.lastSeq < headSeq:
		return c.last, c.lastSeq, ProblemMissingAfter
	case c.running != headHash:
		return c.last, c.lastSeq, ProblemAltered
	}
	return at, 0, ""
}

// Last returns the last entry that checked out, its sequence number and
// hash.
func (c *Checker[P]) Last() (at P, seq int64, hash string) { return c.last, c.lastSeq, c.running }

// pageSize is how many stream entries Walk reads per round trip.
const pageSize = 500

// Walk calls f for every entry of the stream after the stream id after
// ("-" or "" for all), in order, until f returns false or an error, which
// Walk returns as it is. A failed read is an error that says "read what".
func Walk(ctx context.Context, rdb redis.Cmdable, what, stream, after string, f func(redis.XMessage) (bool, error)) error {
	start := after
	if start == "" {
		start = "-"
	}
	for {
		if start != "-" {
			start = "(" + start
		}
		page, err := rdb.XRangeN(ctx, stream, start, "+", pageSize).Result()
		if err != nil {
			return fmt.Errorf("read %s: %w", what, err)
		}
		for _, x := range page {
			more, err := f(x)
			if err != nil || !more {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		start = page[len(page)-1].ID
	}
}
