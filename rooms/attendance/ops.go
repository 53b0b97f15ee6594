package attendance

import (
	"context"
	"encoding/json"
	"time"

	"github.com/redis/go-redis/v9"
)

// opKind is a write to the derived state.
type opKind uint8

const (
	opIncr opKind = iota // HINCRBY key field n
	opSet                // HSET key field value
	opAdd                // SADD key value
)

// op is one write to derived state, with key relative to its generation.
// Live appends queue ops in their transaction and Rebuild applies the same
// ops to memory, so both end with the same keys.
type op struct {
	kind  opKind
	key   string
	field string
	value string
	n     int64
}

func (o op) queue(ctx context.Context, p redis.Pipeliner, gp string) {
	switch o.kind {
	case opIncr:
		p.HIncrBy(ctx, gp+o.key, o.field, o.n)
	case opSet:
		p.HSet(ctx, gp+o.key, o.field, o.value)
	case opAdd:
		p.SAdd(ctx, gp+o.key, o.value)
	}
}

// Derived keys, relative to a generation.
func segKey() string                          { return "seg" }
func roomKey(room string) string              { return "room:" + room }
func weekSegsKey(w Week) string               { return "wseg:" + w.String() }
func peopleKey(w Week) string                 { return "people:" + w.String() }
func personSegsKey(sub string, w Week) string { return "pseg:" + sub + ":" + w.String() }
func dayKey(sub string, d Date) string        { return "d:" + sub + ":" + d.String() }
func weekKey(sub string, w Week) string       { return "w:" + sub + ":" + w.String() }
func absenceKey(sub string) string            { return "absence:" + sub }

// opsFor returns the derived-state writes of an event's result.
func opsFor(res result, e *Event, loc *time.Location) []op {
	switch res.out {
	case ignored:
		return nil
	case noted:
		return []op{{kind: opSet, key: absenceKey(e.Sub), field: e.Room, value: absenceValue(e)}}
	}
	s := res.seg
	b, _ := json.Marshal(s)
	ops := []op{{kind: opSet, key: segKey(), field: s.ID, value: string(b)}}
	indexWeek := func(w Week) {
		ops = append(ops,
			op{kind: opAdd, key: weekSegsKey(w), value: s.ID},
			op{kind: opAdd, key: peopleKey(w), value: s.Sub},
			op{kind: opAdd, key: personSegsKey(s.Sub, w), value: s.ID})
	}
	switch res.out {
	case opened, corrected:
		ops = append(ops, op{kind: opAdd, key: roomKey(s.Room), value: s.ID})
		indexWeek(WeekOf(s.Start, loc))
	case reopened:
		indexWeek(WeekOf(e.At, loc))
	}
	seen := map[Week]bool{}
	count := func(pieces []Piece, sign int64) {
		for _, p := range pieces {
			w := p.Date.Week()
			if !seen[w] {
				seen[w] = true
				indexWeek(w)
			}
			for _, k := range []string{dayKey(s.Sub, p.Date), weekKey(s.Sub, w)} {
				ops = appendIncr(ops, k, "seconds", sign*p.Seconds)
				ops = appendIncr(ops, k, "video_seconds", sign*p.VideoSeconds)
				ops = appendIncr(ops, k, "audio_seconds", sign*p.AudioSeconds)
				ops = appendIncr(ops, k, "direct_seconds", sign*p.DirectSeconds)
				ops = appendIncr(ops, k, "r:"+s.Room, sign*p.Seconds)
				ops = appendIncr(ops, k, "rv:"+s.Room, sign*p.VideoSeconds)
				ops = appendIncr(ops, k, "ra:"+s.Room, sign*p.AudioSeconds)
				ops = appendIncr(ops, k, "rd:"+s.Room, sign*p.DirectSeconds)
			}
			ops = appendIncr(ops, weekKey(s.Sub, w), "d:"+p.Date.String(), sign*p.Seconds)
			ops = appendIncr(ops, weekKey(s.Sub, w), "dv:"+p.Date.String(), sign*p.VideoSeconds)
			ops = appendIncr(ops, weekKey(s.Sub, w), "da:"+p.Date.String(), sign*p.AudioSeconds)
			ops = appendIncr(ops, weekKey(s.Sub, w), "dd:"+p.Date.String(), sign*p.DirectSeconds)
			ops = append(ops,
				op{kind: opSet, key: weekKey(s.Sub, w), field: "name", value: s.Name},
				op{kind: opSet, key: weekKey(s.Sub, w), field: "role", value: string(s.Role)})
		}
	}
	count(res.unpieces, -1)
	count(res.pieces, 1)
	return ops
}

func appendIncr(ops []op, key, field string, n int64) []op {
	if n == 0 {
		return ops
	}
	return append(ops, op{kind: opIncr, key: key, field: field, n: n})
}
