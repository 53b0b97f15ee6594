package rooms

import (
	"strings"
	"testing"
)

// FuzzValidRoomID checks the id grammar every room and program id (from
// tokens, join messages and URLs) goes through: what it accepts is
// 1-128 (programs 64) bytes of letters, digits, '_', '-' and '.', never
// starting with a symbol, never AnyRoom, never a Redis key separator.
func FuzzValidRoomID(f *testing.F) {
	for _, s := range []string{"group-1", "*", "", ".x", "a/b", "a:b", "a\nb", strings.Repeat("a", 129), "é", "a.b_c-d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		check := func(what string, err error, max int) {
			if err != nil {
				return
			}
			if len(id) == 0 || len(id) > max {
				t.Fatalf("%s %q accepted with length %d", what, id, len(id))
			}
			for i, r := range id {
				ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || i > 0 && strings.ContainsRune("_-.", r)
				if !ok {
					t.Fatalf("%s %q accepted with %q at %d", what, id, r, i)
				}
			}
		}
		check("room", ValidRoomID(id), 128)
		check("program", ValidProgramID(id), 64)
	})
}
