// Package spreadsheet writes CSV that a spreadsheet opens as plain text:
// no cell of an export can run as a formula (CSV injection, OWASP).
//
// A person's display name or a room id comes from outside. Written as
// "=HYPERLINK(...)" or "@SUM(...)" into a CSV cell, Excel, LibreOffice and
// Google Sheets would evaluate it when staff open the export, which can
// leak other cells or run commands. As OWASP recommends, a cell that starts
// with '=', '+', '-', '@', a tab or a carriage return is written with a
// single quote in front, which spreadsheets show as text.
package spreadsheet

import (
	"encoding/csv"
	"io"
	"regexp"
)

// number is a plain decimal number: a spreadsheet reads "-12" or "-0.5" as
// the number it is, so such a cell needs no quote (and a quote would turn
// a value into text).
var number = regexp.MustCompile(`^-[0-9]+(\.[0-9]+)?$`)

// Cell returns s as it must be written into a CSV cell: with a single
// quote in front when a spreadsheet would take it for a formula, otherwise
// unchanged. Plain negative numbers such as "-12" are left as they are.
func Cell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '@', '\t', '\r':
		return "'" + s
	case '-':
		if number.MatchString(s) {
			return s
		}
		return "'" + s
	}
	return s
}

// Writer writes CSV records with every cell passed through Cell.
type Writer struct {
	cw  *csv.Writer
	buf []string
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{cw: csv.NewWriter(w)} }

// Write writes one record, each cell neutralised by Cell.
func (w *Writer) Write(record []string) error {
	w.buf = w.buf[:0]
	for _, c := range record {
		w.buf = append(w.buf, Cell(c))
	}
	return w.cw.Write(w.buf)
}

// Flush writes any buffered data to the underlying writer and returns the
// first error of any write or of the flush.
func (w *Writer) Flush() error {
	w.cw.Flush()
	return w.cw.Error()
}
