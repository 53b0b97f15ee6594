package audit

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"iop/rooms/chain"
)

// FuzzDecode feeds stream entries as Redis could hold them (after a bug, a
// restore or tampering) to the decoder Page, Export and Verify use: it
// must report them unreadable or broken, never panic, and never call an
// entry intact that the chain does not vouch for.
func FuzzDecode(f *testing.F) {
	l := New(nil, Options{})
	body := `{"seq":1,"at":"2026-11-30T14:00:00Z","program":"p1","actor":"t1","role":"therapist","action":"join","room":"g1"}`
	f.Add("p1", "", chain.Hash(nil, "", []byte(body)), body)
	f.Add("p1", "x", "y", `{"seq":"1"}`)
	f.Add("p2", "", chain.Hash(nil, "", []byte(body)), body)
	f.Add("p1", "", "", "null")
	f.Fuzz(func(t *testing.T, program, prev, hash, body string) {
		x := redis.XMessage{ID: "1-0", Values: map[string]any{"prev": prev, "hash": hash, "entry": body}}
		e, link, ok := l.decode(program, x)
		if !ok {
			return
		}
		if link.Intact && (e.Program != program || chain.Hash(nil, prev, []byte(body)) != hash) {
			t.Fatalf("entry called intact: %+v", e)
		}
	})
}

// FuzzParseKey checks IOP_AUDIT_KEY and IOP_AUDIT_RETENTION parsing.
func FuzzParseKey(f *testing.F) {
	f.Add("hex:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", "2192d")
	f.Add("short", "1d")
	f.Add("hex:zz", "-5d")
	f.Add("", "99999999999999999999d")
	f.Fuzz(func(t *testing.T, key, retention string) {
		if k, err := ParseKey(key); err == nil && len(k) != 0 && len(k) < MinKeyLen {
			t.Fatalf("ParseKey(%q) accepted %d bytes", key, len(k))
		}
		if d, err := ParseRetention(retention); err == nil && d < MinRetention {
			t.Fatalf("ParseRetention(%q) = %v, under the minimum", retention, d)
		}
	})
}
