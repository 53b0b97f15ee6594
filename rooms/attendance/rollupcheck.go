package attendance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"
)

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

// stored is a generation's keys as read back: hashes, sets, and keys of
// any other type (which the events never give).
type stored struct {
	hashes map[string]map[string]string
	sets   map[string]map[string]bool
	other  map[string]string // key -> its type
}

// readGen reads every key of the generation with prefix gp, by key
// relative to gp.
func readGen(ctx context.Context, c redis.Cmdable, gp string) (*stored, error) {
	out := &stored{hashes: map[string]map[string]string{}, sets: map[string]map[string]bool{}, other: map[string]string{}}
	var keys []string
	it := c.Scan(ctx, 0, escapeGlob(gp)+"*", 500).Iterator()
	for it.Next(ctx) {
		keys = append(keys, it.Val())
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list rollups: %w", err)
	}
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 500)]
		keys = keys[len(batch):]
		types := make([]*redis.StatusCmd, len(batch))
		p := c.Pipeline()
		for i, key := range batch {
			types[i] = p.Type(ctx, key)
		}
		if _, err := p.Exec(ctx); err != nil {
			return nil, fmt.Errorf("read rollups: %w", err)
		}
		hs := map[string]*redis.MapStringStringCmd{}
		ss := map[string]*redis.StringSliceCmd{}
		for i, key := range batch {
			switch t := types[i].Val(); t {
			case "hash":
				hs[key] = p.HGetAll(ctx, key)
			case "set":
				ss[key] = p.SMembers(ctx, key)
			case "none": // removed since the scan
			default:
				out.other[key[len(gp):]] = t
			}
		}
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("read rollups: %w", err)
		}
		for key, cmd := range hs {
			if len(cmd.Val()) > 0 {
				out.hashes[key[len(gp):]] = cmd.Val()
			}
		}
		for key, cmd := range ss {
			if len(cmd.Val()) > 0 {
				set := map[string]bool{}
				for _, v := range cmd.Val() {
					set[v] = true
				}
				out.sets[key[len(gp):]] = set
			}
		}
	}
	return out, nil
}

// diff returns the first key, in key order, whose stored value is not the
// one the model derived from the events; nil when every key matches.
func (m *model) diff(st *stored) *RollupFinding {
	all := map[string]bool{}
	for _, src := range []map[string]map[string]string{m.hashes, st.hashes} {
		for k := range src {
			all[k] = true
		}
	}
	for _, src := range []map[string]map[string]bool{m.sets, st.sets} {
		for k := range src {
			all[k] = true
		}
	}
	for k := range st.other {
		all[k] = true
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if t, ok := st.other[k]; ok {
			return &RollupFinding{Key: k, Stored: "a " + t}
		}
		if f := diffHash(k, st.hashes[k], m.hashes[k]); f != nil {
			return f
		}
		if f := diffSet(k, st.sets[k], m.sets[k]); f != nil {
			return f
		}
	}
	return nil
}

func diffHash(key string, got, want map[string]string) *RollupFinding {
	fields := make([]string, 0, len(got)+len(want))
	for f := range got {
		fields = append(fields, f)
	}
	for f := range want {
		if _, ok := got[f]; !ok {
			fields = append(fields, f)
		}
	}
	slices.Sort(fields)
	for _, f := range fields {
		if got[f] != want[f] {
			return &RollupFinding{Key: key, Field: f, Stored: got[f], Events: want[f]}
		}
	}
	return nil
}

func diffSet(key string, got, want map[string]bool) *RollupFinding {
	members := make([]string, 0, len(got)+len(want))
	for v := range got {
		members = append(members, v)
	}
	for v := range want {
		if !got[v] {
			members = append(members, v)
		}
	}
	slices.Sort(members)
	for _, v := range members {
		if got[v] != want[v] {
			f := &RollupFinding{Key: key, Field: v}
			if got[v] {
				f.Stored = "member"
			} else {
				f.Events = "member"
			}
			return f
		}
	}
	return nil
}
