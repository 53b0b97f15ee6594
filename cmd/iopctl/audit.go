package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"iop/rooms/audit"
)

// runAudit dispatches iopctl audit SUBCOMMAND.
func runAudit(args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("audit: want show, verify, export or trim")
	}
	switch args[0] {
	case "show":
		return auditShow(args[1:], getenv, stdout)
	case "verify":
		return auditVerify(args[1:], getenv, stdout)
	case "export":
		return auditExport(args[1:], getenv, stdout)
	case "trim":
		return auditTrim(args[1:], getenv, stdout)
	}
	return fmt.Errorf("audit %s: unknown (want show, verify, export or trim)", args[0])
}

// auditFlags are the flags every audit command shares: -redis and the key.
type auditFlags struct {
	redisURL, keyFile, retention *string
	getenv                       func(string) string
}

func newAuditFlags(cmd *command, getenv func(string) string) *auditFlags {
	return &auditFlags{
		redisURL:  redisFlag(cmd, getenv),
		keyFile:   cmd.String("key-file", "", "read the audit key from this file instead of $IOP_AUDIT_KEY (hex: and hex digits, or raw bytes)"),
		retention: cmd.String("retention", getenv("IOP_AUDIT_RETENTION"), "keep entries this long: days (2192d) or a duration; at least six years [$IOP_AUDIT_RETENTION]"),
		getenv:    getenv,
	}
}

// with connects to Redis and runs fn with the deployment's audit log, keyed as
// iopd's is.
func (f *auditFlags) with(fn func(context.Context, *audit.Log) error) error {
	raw := f.getenv("IOP_AUDIT_KEY")
	if *f.keyFile != "" {
		b, err := os.ReadFile(*f.keyFile)
		if err != nil {
			return fmt.Errorf("audit key file: %w", err)
		}
		raw = string(b)
	}
	key, err := audit.ParseKey(raw)
	if err != nil {
		return err
	}
	retention, err := audit.ParseRetention(*f.retention)
	if err != nil {
		return err
	}
	return withStores(*f.redisURL, f.getenv, func(ctx context.Context, s *stores) error {
		return fn(ctx, audit.New(s.st.Redis, audit.Options{Key: key, Retention: retention}))
	})
}

// auditShow prints a page of a program's trail.
func auditShow(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("audit show", "PROGRAM [-after ID] [-n N] [-redis URL]", stdout)
	f := newAuditFlags(cmd, getenv)
	after := cmd.String("after", "", "start after this entry id (the next page's id printed last)")
	n := cmd.Int("n", audit.DefaultPageSize, fmt.Sprintf("entries to show, 1 to %d", audit.MaxPageSize))
	pos, err := cmd.parseArgs(args, "PROGRAM")
	if err != nil {
		return err
	}
	if *n < 1 || *n > audit.MaxPageSize {
		return fmt.Errorf("audit show: -n %d: want 1 to %d", *n, audit.MaxPageSize)
	}
	return f.with(func(ctx context.Context, l *audit.Log) error {
		entries, next, err := l.Page(ctx, pos[0], *after, *n)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tID\tAT (UTC)\tACTION\tACTOR\tROLE\tSUBJECT\tROOM\tCODE\tDETAIL\tADDR")
		for _, e := range entries {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.ID, e.At.Format(time.RFC3339),
				e.Action, dash(e.Actor), dash(e.Role), dash(e.Subject), dash(e.Room), dash(e.Code), dash(e.Detail), dash(e.Addr))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		switch {
		case len(entries) == 0 && *after == "":
			fmt.Fprintf(stdout, "(the audit trail of %s is empty)\n", pos[0])
		case next != "":
			fmt.Fprintf(stdout, "more: iopctl audit show %s -after %s -n %d\n", pos[0], next, *n)
		}
		return nil
	})
}

// dash shows an empty field as "-".
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// auditVerify walks a program's chain; a broken chain is an error (exit
// status 1) naming the first altered or missing entry.
func auditVerify(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("audit verify", "PROGRAM [-key-file FILE] [-redis URL]", stdout)
	f := newAuditFlags(cmd, getenv)
	pos, err := cmd.parseArgs(args, "PROGRAM")
	if err != nil {
		return err
	}
	program := pos[0]
	return f.with(func(ctx context.Context, l *audit.Log) error {
		v, err := l.Verify(ctx, program)
		if err != nil {
			return err
		}
		if !v.OK {
			fl := v.First
			fmt.Fprintf(stdout, "FAILED %s: %d entries checked; first problem at seq %d (entry %s): %s\n",
				program, v.Entries, fl.Seq, orNone(fl.StreamID), fl.Problem)
			if v.WrongKey {
				fmt.Fprintln(stdout, "note: the chain's head says it was written with another audit key (or none) than the one given")
			}
			return fmt.Errorf("audit trail of %s: the chain is broken at seq %d (entry %s): %s", program, fl.Seq, orNone(fl.StreamID), fl.Problem)
		}
		mode := "unkeyed (SHA-256)"
		if v.Keyed {
			mode = "keyed (HMAC-SHA256)"
		}
		from := ""
		if v.Anchor > 1 {
			from = fmt.Sprintf(" from seq %d (older ones removed by retention)", v.Anchor)
		}
		_, err = fmt.Fprintf(stdout, "OK %s: %d entries%s, head seq %d, hash %s, %s\n", program, v.Entries, from, v.Seq, orNone(v.Head), mode)
		return err
	})
}

// auditExport writes a program's whole trail as JSON lines.
func auditExport(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("audit export", "PROGRAM [-o FILE.jsonl] [-redis URL]", stdout)
	f := newAuditFlags(cmd, getenv)
	out := cmd.String("o", "", "write to this file (mode 0600) instead of stdout")
	pos, err := cmd.parseArgs(args, "PROGRAM")
	if err != nil {
		return err
	}
	return f.with(func(ctx context.Context, l *audit.Log) error {
		if *out == "" {
			return l.Export(ctx, stdout, pos[0])
		}
		// Who attended, was admitted or removed is health information
		// (42 CFR Part 2): readable by the operator only.
		file, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		lines := &lineCounter{w: file}
		if err := l.Export(ctx, lines, pos[0]); err != nil {
			file.Close()
			return err
		}
		if err := file.Close(); err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "wrote %d entries of %s to %s\n", lines.n, pos[0], *out)
		return err
	})
}

// lineCounter counts the lines written through it.
type lineCounter struct {
	w io.Writer
	n int
}

func (c *lineCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += strings.Count(string(p[:n]), "\n")
	return n, err
}

// auditTrim applies retention to a program's trail.
func auditTrim(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("audit trim", "PROGRAM [-retention 2192d] [-key-file FILE] [-redis URL]", stdout)
	f := newAuditFlags(cmd, getenv)
	pos, err := cmd.parseArgs(args, "PROGRAM")
	if err != nil {
		return err
	}
	program := pos[0]
	return f.with(func(ctx context.Context, l *audit.Log) error {
		n, err := l.Trim(ctx, program)
		if err != nil {
			return err
		}
		v, err := l.Verify(ctx, program)
		if err != nil {
			return err
		}
		if !v.OK {
			return fmt.Errorf("audit trail of %s: trimmed %d entries, but the chain no longer verifies (run iopctl audit verify %s)", program, n, program)
		}
		_, err = fmt.Fprintf(stdout, "trimmed %s: removed %d entries; %d kept from seq %d, the chain verifies\n", program, n, v.Entries, v.Anchor)
		return err
	})
}
