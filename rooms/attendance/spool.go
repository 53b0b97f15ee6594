package attendance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// spool is an append-only file of events waiting for Redis: one JSON
// object per line, each write fsync'd before it counts. It is emptied only
// after every line in it was stored.
type spool struct {
	path string
	f    *os.File
	n    int   // lines in the file
	done int   // lines stored by this process
	off  int64 // byte offset after the stored lines
}

func openSpool(path string) (*spool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open attendance spool: %w", err)
	}
	s := &spool{path: path, f: f}
	b, err := os.ReadFile(path)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read attendance spool: %w", err)
	}
	s.n = bytes.Count(b, []byte{'\n'})
	if len(b) > 0 && b[len(b)-1] != '\n' {
		// A write cut short by a crash: end the torn line so that the
		// next one starts cleanly; replay skips what does not parse.
		if _, err := f.Write([]byte{'\n'}); err != nil {
			f.Close()
			return nil, fmt.Errorf("repair attendance spool: %w", err)
		}
		s.n++
	}
	return s, nil
}

// pending returns how many spooled lines are not stored yet.
func (s *spool) pending() int { return s.n - s.done }

// write appends e and syncs the file.
func (s *spool) write(e Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := s.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write attendance spool: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync attendance spool: %w", err)
	}
	s.n++
	return nil
}

// replay calls store for each line not stored yet, in order, and stops at
// its first error. When every line is stored the file is emptied.
func (s *spool) replay(store func(Event) error) error {
	if s.pending() == 0 {
		return nil
	}
	r, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("open attendance spool: %w", err)
	}
	defer r.Close()
	if _, err := r.Seek(s.off, io.SeekStart); err != nil {
		return fmt.Errorf("read attendance spool: %w", err)
	}
	br := bufio.NewReader(r)
	for s.pending() > 0 {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return fmt.Errorf("read attendance spool: %w", err)
		}
		var e Event
		if json.Unmarshal(line, &e) == nil {
			if err := store(e); err != nil {
				return err
			}
		}
		s.done++
		s.off += int64(len(line))
	}
	if err := s.f.Truncate(0); err != nil {
		return fmt.Errorf("empty attendance spool: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync attendance spool: %w", err)
	}
	s.n, s.done, s.off = 0, 0, 0
	return nil
}

func (s *spool) close() { s.f.Close() }
