package schedule

import (
	"bytes"
	"testing"
)

// FuzzLoadYAML feeds schedule files (the staff API's and iopctl's input)
// to the loader: it must refuse or accept, never panic or hang.
func FuzzLoadYAML(f *testing.F) {
	f.Add(Example)
	f.Add([]byte("program:\n  id: p\n  name: P\n  time_zone: UTC\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := LoadYAML(bytes.NewReader(data))
		if err == nil && file == nil {
			t.Fatal("no file and no error")
		}
	})
}

// FuzzParseWeekday checks weekday names.
func FuzzParseWeekday(f *testing.F) {
	for _, s := range []string{"mon", "Monday", " SUN ", "", "xyz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWeekday(s)
		if err == nil && (w < 0 || w > 6) {
			t.Fatalf("ParseWeekday(%q) = %d", s, int(w))
		}
	})
}
