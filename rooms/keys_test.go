package rooms

import "testing"

// TestKeyPart: ids that differ give key components that differ, ids of the
// room grammar (the key names already stored) are left as they are, and no
// escaped id holds a separator or a hash tag brace.
func TestKeyPart(t *testing.T) {
	cases := map[string]string{
		"alice":         "alice",
		"p1/group-a.2":  "p1/group-a.2",
		"a:b":           "a%3Ab",
		"a%3Ab":         "a%253Ab",
		"{p}":           "%7Bp%7D",
		"x:{y}:%":       "x%3A%7By%7D%3A%25",
		"":              "",
		"user@clinic.x": "user@clinic.x",
	}
	seen := map[string]string{}
	for id, want := range cases {
		got := KeyPart(id)
		if got != want {
			t.Errorf("KeyPart(%q) = %q, want %q", id, got, want)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("ids %q and %q share the key component %q", id, other, got)
		}
		seen[got] = id
	}
}
