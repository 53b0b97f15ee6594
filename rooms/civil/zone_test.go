package civil

import (
	"strings"
	"testing"
)

// TestLoadZone: a program's zone must mean the same on every node: the
// host's own zone and the empty name are refused, as are names that are no
// IANA zone, each with the name in the error.
func TestLoadZone(t *testing.T) {
	if loc, err := LoadZone("America/New_York"); err != nil || loc.String() != "America/New_York" {
		t.Fatalf("America/New_York: %v, %v", loc, err)
	}
	for _, bad := range []string{"", "Local", "Mars/Olympus", "../etc/passwd"} {
		_, err := LoadZone(bad)
		if err == nil || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("LoadZone(%q) = %v, want a refusal naming it", bad, err)
		}
	}
}

// TestZeroDate: the zero date is "unset": it writes as "" and "" reads
// back as it, while ParseDate (a date someone typed) refuses "".
func TestZeroDate(t *testing.T) {
	var d Date
	if d.String() != "" || !d.IsZero() {
		t.Errorf("zero date writes %q", d.String())
	}
	if err := d.UnmarshalText(nil); err != nil || !d.IsZero() {
		t.Errorf(`"" reads as %v, %v`, d, err)
	}
	if _, err := ParseDate(""); err == nil {
		t.Error(`ParseDate("") accepted`)
	}
}
