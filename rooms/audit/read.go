package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/redis/go-redis/v9"

	"iop/rooms/chain"
)

// Page returns up to limit entries of a program's trail after the stream
// id after ("" for the start), oldest first, and the id to pass as after
// for the next page ("" when there are no more). limit is capped to
// 1..MaxPageSize; 0 or less means DefaultPageSize. An entry that does not
// decode is an error wrapping ErrUnreadable that names it.
func (l *Log) Page(ctx context.Context, program, after string, limit int) (entries []Entry, next string, err error) {
	if err := checkProgram(program); err != nil {
		return nil, "", err
	}
	start := "-"
	if after != "" {
		if !streamID.MatchString(after) {
			return nil, "", fmt.Errorf("%w after: want an entry id such as 1796148130000-0", ErrInvalid)
		}
		start = "(" + after
	}
	switch {
	case limit <= 0:
		limit = DefaultPageSize
	case limit > MaxPageSize:
		limit = MaxPageSize
	}
	page, err := l.rdb.XRangeN(ctx, keysFor(program).stream, start, "+", int64(limit+1)).Result()
	if err != nil {
		return nil, "", fmt.Errorf("read the audit trail of %s: %w", program, err)
	}
	entries = make([]Entry, 0, min(len(page), limit))
	for i, x := range page {
		if i == limit {
			next = entries[limit-1].ID
			break
		}
		e, _, ok := l.decode(program, x)
		if !ok {
			return nil, "", fmt.Errorf("%w %s in the trail of %s (run verify)", ErrUnreadable, x.ID, program)
		}
		entries = append(entries, e)
	}
	return entries, next, nil
}

// Export writes a program's whole trail to w as JSON lines: one Entry
// object per line, oldest first, exactly as Page returns them. JSON rather
// than CSV keeps every field and hash exact, and nothing in it can run as
// a spreadsheet formula.
func (l *Log) Export(ctx context.Context, w io.Writer, program string) error {
	if err := checkProgram(program); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return chain.Walk(ctx, l.rdb, "audit trail", keysFor(program).stream, "-", func(x redis.XMessage) (bool, error) {
		e, _, ok := l.decode(program, x)
		if !ok {
			return false, fmt.Errorf("%w %s in the trail of %s (run verify)", ErrUnreadable, x.ID, program)
		}
		if err := enc.Encode(e); err != nil {
			return false, fmt.Errorf("export the audit trail of %s: %w", program, err)
		}
		return true, nil
	})
}
