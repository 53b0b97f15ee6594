package chain

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestHash: without a key the hash is sha256(prev "\n" body), the format
// attendance chains already store; with a key it is the HMAC, which a
// different key or plain SHA-256 does not reproduce.
func TestHash(t *testing.T) {
	sum := sha256.Sum256([]byte("abc\n{\"seq\":2}"))
	if got := Hash(nil, "abc", []byte(`{"seq":2}`)); got != hex.EncodeToString(sum[:]) {
		t.Errorf("unkeyed hash %s, want sha256 of prev, newline, body", got)
	}
	m := hmac.New(sha256.New, []byte("k1"))
	m.Write([]byte("abc\n{\"seq\":2}"))
	keyed := Hash([]byte("k1"), "abc", []byte(`{"seq":2}`))
	if keyed != hex.EncodeToString(m.Sum(nil)) {
		t.Errorf("keyed hash %s, want HMAC-SHA256", keyed)
	}
	if keyed == Hash([]byte("k2"), "abc", []byte(`{"seq":2}`)) || keyed == Hash(nil, "abc", []byte(`{"seq":2}`)) {
		t.Error("another key, or none, gives the same hash")
	}
}

// TestChecker: each way of breaking a chain is named at the entry an
// auditor should look at.
func TestChecker(t *testing.T) {
	h := func(i int) string { return Hash(nil, "", []byte{byte(i)}) }
	link := func(i int) Link { // entry i (1-based) of an intact chain
		prev := ""
		if i > 1 {
			prev = h(i - 1)
		}
		return Link{Seq: int64(i), Prev: prev, Hash: h(i), Intact: true}
	}
	intact := []Link{link(1), link(2), link(3), link(4)}
	cases := []struct {
		name    string
		links   []Link
		head    int
		at      int // index+1 of the entry named; 0 for none
		seq     int64
		problem string
	}{
		{"intact", intact, 4, 0, 0, ""},
		{"bytes edited", []Link{link(1), {Seq: 2, Prev: h(1), Hash: h(2)}, link(3), link(4)}, 4, 2, 2, ProblemAltered},
		{"hash recomputed", []Link{link(1), {Seq: 2, Prev: h(1), Hash: "x", Intact: true}, link(3), link(4)}, 4, 2, 2, ProblemAltered},
		{"removed", []Link{link(1), link(3), link(4)}, 4, 2, 3, ProblemMissingBefore},
		{"sequence number lowered", []Link{link(1), link(2), {Seq: 2, Prev: h(2), Hash: h(3), Intact: true}}, 3, 3, 2, ProblemAltered},
		{"tail removed", intact[:3], 4, 3, 3, ProblemMissingAfter},
		{"last entry rewritten", []Link{link(1), link(2), link(3), {Seq: 4, Prev: h(3), Hash: "y", Intact: true}}, 4, 4, 4, ProblemAltered},
		{"empty but a head", nil, 2, 0, 0, ProblemMissingAfter},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewChecker[int](1, "")
			at, seq, problem := 0, int64(0), ""
			for i, l := range tc.links {
				if at, seq, problem = c.Next(i+1, l); problem != "" {
					break
				}
			}
			if problem == "" {
				at, seq, problem = c.End(int64(tc.head), h(tc.head))
			}
			if at != tc.at || seq != tc.seq || problem != tc.problem {
				t.Errorf("got entry %d seq %d %q, want entry %d seq %d %q", at, seq, problem, tc.at, tc.seq, tc.problem)
			}
		})
	}
}

// TestKeyID: a key id names the key and its chain kind, never the key.
func TestKeyID(t *testing.T) {
	k1, k2 := []byte("0123456789abcdef0123456789abcdef"), []byte("0123456789abcdef0123456789abcdeF")
	if KeyID(nil, "x") != "" {
		t.Error("no key has an id")
	}
	a := KeyID(k1, "iop audit key id")
	if len(a) != 16 || a == KeyID(k2, "iop audit key id") || a == KeyID(k1, "iop attendance key id") {
		t.Errorf("key ids do not tell keys and chain kinds apart: %s", a)
	}
}
