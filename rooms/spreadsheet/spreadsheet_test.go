package spreadsheet

import (
	"bytes"
	"encoding/csv"
	"testing"
)

// TestCell: everything a spreadsheet would evaluate is quoted; ordinary
// text, dates, times and numbers (negative ones too) read as before.
func TestCell(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "",
		"Alex":                      "Alex",
		"=1+1":                      "'=1+1",
		"+1 555 0100":               "'+1 555 0100",
		"-2+3":                      "'-2+3",
		"-":                         "'-",
		"@SUM(A1:A9)":               "'@SUM(A1:A9)",
		"\t=cmd":                    "'\t=cmd",
		"\r=cmd":                    "'\r=cmd",
		"=HYPERLINK(\"http://x\")":  "'=HYPERLINK(\"http://x\")",
		"-12":                       "-12",
		"-0.5":                      "-0.5",
		"-1e5":                      "'-1e5",
		"5430":                      "5430",
		"2026-12-01":                "2026-12-01",
		"2026-12-01T18:02:10-05:00": "2026-12-01T18:02:10-05:00",
		"a=b":                       "a=b",
		"'quoted":                   "'quoted",
	} {
		if got := Cell(in); got != want {
			t.Errorf("Cell(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWriter: what a CSV reader reads back is each cell as Cell wrote it.
func TestWriter(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	rows := [][]string{{"name", "seconds"}, {"=cmd|' /C calc'!A0", "-5"}, {"Line\nbreak, \"quoted\"", "7"}}
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"name", "seconds"}, {"'=cmd|' /C calc'!A0", "-5"}, {"Line\nbreak, \"quoted\"", "7"}}
	for i := range want {
		for j := range want[i] {
			if got[i][j] != want[i][j] {
				t.Errorf("row %d cell %d: %q, want %q", i, j, got[i][j], want[i][j])
			}
		}
	}
}
