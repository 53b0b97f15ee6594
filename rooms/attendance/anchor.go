package attendance

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ParsePoint reads a chain head as ChainHead.Point writes it ("seq N hash H
// key K", "key K from M"), as the audit trail's export entries record it
// at the end of their detail; text before "seq" is skipped.
func ParsePoint(program, s string) (ChainHead, error) {
	i := strings.LastIndex(s, "seq ")
	if i < 0 {
		return ChainHead{}, fmt.Errorf("no chain head in %q", s)
	}
	f := strings.Fields(s[i:])
	h := ChainHead{Program: program}
	if len(f) < 6 || f[0] != "seq" || f[2] != "hash" || f[4] != "key" {
		return ChainHead{}, fmt.Errorf("chain head %q: want seq N hash H key K", s[i:])
	}
	var err error
	if h.Seq, err = strconv.ParseInt(f[1], 10, 64); err != nil || h.Seq < 0 {
		return ChainHead{}, fmt.Errorf("chain head %q: bad seq", s[i:])
	}
	if h.Hash = f[3]; h.Hash == "none" {
		h.Hash = ""
	}
	if h.Key = f[5]; h.Key == "none" {
		h.Key = ""
	}
	h.KeyedFrom = 0
	if h.Key != "" {
		h.KeyedFrom = 1
	}
	if len(f) >= 8 && f[6] == "from" {
		if h.KeyedFrom, err = strconv.ParseInt(f[7], 10, 64); err != nil {
			return ChainHead{}, fmt.Errorf("chain head %q: bad from", s[i:])
		}
	}
	return h, nil
}

// HeadCheck is what the chain holds at a head recorded elsewhere (an
// export's, from the audit trail or the CSV's last line).
type HeadCheck struct {
	Recorded ChainHead `json:"recorded"`
	// Found is the hash the chain now has at Recorded.Seq; "" when it no
	// longer reaches that far.
	Found string `json:"found"`
	OK    bool   `json:"ok"` // Found is the recorded hash: the chain still holds what was exported
}

// CheckHeads compares recorded heads with the chain: an unkeyed chain
// rewritten from some point on, hashes and all, verifies by itself, but no
// longer holds the hash an earlier export recorded at that seq. Heads of
// an empty chain (seq 0) always hold.
func (s *Store) CheckHeads(ctx context.Context, program string, heads []ChainHead) ([]HeadCheck, error) {
	want := map[int64]string{}
	for _, h := range heads {
		if h.Seq > 0 {
			want[h.Seq] = ""
		}
	}
	err := s.walk(ctx, program, "-", func(x redis.XMessage) (bool, error) {
		en, ok := decodeEntry(x)
		var e Event
		if ok && json.Unmarshal([]byte(en.body), &e) == nil {
			if _, asked := want[e.Seq]; asked && want[e.Seq] == "" {
				want[e.Seq] = en.hash
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]HeadCheck, 0, len(heads))
	for _, h := range heads {
		c := HeadCheck{Recorded: h, Found: want[h.Seq]}
		c.OK = h.Seq == 0 || (c.Found != "" && c.Found == h.Hash)
		out = append(out, c)
	}
	return out, nil
}
