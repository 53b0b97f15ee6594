package attendance

import (
	"context"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"iop/rooms"
	"iop/rooms/spreadsheet"
)

// CSVHeader is the header of the segment export (docs/api.md, the
// program week's .csv).
const CSVHeader = "sub,name,role,room,kind,date_local,start_utc,end_utc,start_local,end_local,seconds,video_seconds,modality," +
	"audio_only_seconds,no_media_seconds,direct_seconds,no_clinician_seconds"

// Row is one line of the billing export: the part of one segment that
// falls on one local date.
type Row struct {
	Sub          string
	Name         string
	Role         rooms.Role
	Room         string
	Kind         rooms.Kind
	Date         Date
	Start        time.Time // in the program's zone (the local columns use it)
	End          time.Time // zero while the segment is open
	Seconds      int64
	VideoSeconds int64
	Modality     Modality // held for the most seconds of the row
	Breakdown             // audio only, no media, direct, without a clinician
}

// WriteCSV writes rows under CSVHeader. Times are RFC 3339: UTC in the
// _utc columns, the rows' own zone in the _local ones; an open segment's
// end columns are empty. A cell a spreadsheet would run as a formula (a
// display name such as "=HYPERLINK(...)") is written with a single quote
// in front (package spreadsheet); numbers, dates and times never are.
func WriteCSV(w io.Writer, rows []Row) error {
	cw := spreadsheet.NewWriter(w)
	if err := cw.Write(strings.Split(CSVHeader, ",")); err != nil {
		return err
	}
	for _, r := range rows {
		var endUTC, endLocal string
		if !r.End.IsZero() {
			endUTC, endLocal = r.End.UTC().Format(time.RFC3339), r.End.Format(time.RFC3339)
		}
		rec := []string{
			r.Sub, r.Name, string(r.Role), r.Room, string(r.Kind), r.Date.String(),
			r.Start.UTC().Format(time.RFC3339), endUTC, r.Start.Format(time.RFC3339), endLocal,
			strconv.FormatInt(r.Seconds, 10), strconv.FormatInt(r.VideoSeconds, 10), string(r.Modality),
			strconv.FormatInt(r.AudioOnlySeconds, 10), strconv.FormatInt(r.NoMediaSeconds, 10),
			strconv.FormatInt(r.DirectSeconds, 10), strconv.FormatInt(r.NoClinicianSeconds, 10),
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	return cw.Flush()
}

// WeekRows returns the billing rows of a program's ISO week: one per
// segment and local date in the week, ordered by start, sub and room.
func (s *Store) WeekRows(ctx context.Context, program string, w Week) ([]Row, error) {
	v, err := s.view(ctx, program)
	if err != nil {
		return nil, err
	}
	segs, err := s.weekSegments(ctx, v, weekSegsKey(w), "")
	if err != nil {
		return nil, err
	}
	rows := []Row{}
	for _, seg := range segs {
		for _, p := range seg.Pieces(v.loc, v.now) {
			if !w.Contains(p.Date) {
				continue
			}
			r := Row{
				Sub: seg.Sub, Name: seg.Name, Role: seg.Role, Room: seg.Room, Kind: seg.Kind, Date: p.Date,
				Start: p.Start.In(v.loc), End: p.End.In(v.loc), Seconds: p.Seconds, VideoSeconds: p.VideoSeconds,
				Modality: p.Modality(), Breakdown: p.Amount.Breakdown(),
			}
			if seg.Open() && p.End.Equal(v.now) {
				r.End = time.Time{}
			}
			rows = append(rows, r)
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if !a.Start.Equal(b.Start) {
			return a.Start.Before(b.Start)
		}
		if a.Sub != b.Sub {
			return a.Sub < b.Sub
		}
		return a.Room < b.Room
	})
	return rows, nil
}

// ExportWeek writes a program's ISO week as the billing CSV, its chain
// head on the last line.
func (s *Store) ExportWeek(ctx context.Context, w io.Writer, program string, week Week) error {
	x, err := s.WeekExport(ctx, program, week)
	if err != nil {
		return err
	}
	return x.WriteCSV(w)
}

// Export is a billing export: its rows and the chain head they were read
// at.
type Export struct {
	Rows []Row
	Head ChainHead
}

// ChainHead is the chain head the rows were read at.
func (x *Export) ChainHead() ChainHead { return x.Head }

// WeekExport returns the billing rows of a program's ISO week (WeekRows)
// and the program's chain head read after them: every event the rows count
// is in the chain up to that head.
func (s *Store) WeekExport(ctx context.Context, program string, w Week) (*Export, error) {
	rows, err := s.WeekRows(ctx, program, w)
	if err != nil {
		return nil, err
	}
	h, err := s.Head(ctx, program)
	if err != nil {
		return nil, err
	}
	return &Export{Rows: rows, Head: h}, nil
}

// CSVHeadPrefix starts the billing CSV's last line: a comment that gives
// the chain head the rows were read at (ChainHead.String), in its first
// cell, the other cells empty so that every line has the header's columns.
// CSV readers that know comments skip it (pandas comment="#", Go's
// csv.Reader Comment '#'); a spreadsheet shows it as the last row.
const CSVHeadPrefix = "# iop attendance "

// WriteCSV writes the export's rows under CSVHeader (WriteCSV), then the
// chain head line (CSVHeadPrefix).
func (x *Export) WriteCSV(w io.Writer) error {
	cw := spreadsheet.NewWriter(w)
	if err := WriteCSV(w, x.Rows); err != nil {
		return err
	}
	rec := make([]string, strings.Count(CSVHeader, ",")+1)
	rec[0] = CSVHeadPrefix + x.Head.String()
	if err := cw.Write(rec); err != nil {
		return err
	}
	return cw.Flush()
}
