// Command iopctl is the operator's tool for an iopd deployment: it mints
// join and API tokens from the same key configuration as iopd, and makes the
// EdDSA or ES256 signing keys iopd verifies with.
//
// Mint a token (printed on stdout), or a join link with -url:
//
//	iopctl token -sub ID -name NAME -role ROLE -room ROOM [-kind KIND] [-program P] [-ttl 1h] [-url BASE] [-key private.pem]
//
//	export IOP_JWT_SECRET=...   # the same secret as iopd (HS256), or:
//	export IOP_JWT_PRIVATE_KEY=/etc/iop/private.pem   # EdDSA / ES256, or -key
//	iopctl token -sub c-1042 -name Alex -role client -room tue-evening -program evening
//	iopctl token -sub t-7 -name Sam -role therapist -room '*' -kind individual -ttl 12h \
//	    -url https://iop.example.org
//	# https://iop.example.org/join#token=eyJ...
//
// ROLE is therapist, client, family or staff; ROOM "*" (any room) is for
// therapists and staff only, and -kind (the kind of an ad-hoc room the token
// opens: group, individual, family, complementary, support) for therapists
// only. A staff token for "*" is for the staff API and does not join media.
// -audience and -issuer (IOP_JWT_AUDIENCE, default iop; IOP_JWT_ISSUER) must
// be what iopd expects. The token travels in the link's fragment, which
// browsers never send to a server.
//
// Make a signing key, and the public key iopd loads from IOP_JWT_KEYS:
//
//	iopctl keygen -alg EdDSA|ES256 -out private.pem [-pub public.pem] [-jwks keys.json]
//
// The private key (PKCS#8 PEM, mode 0600, never overwritten) stays with
// whoever mints tokens. The public key goes to stdout, or is added to the
// PEM file -pub and/or the JWK set file -jwks (created if missing), each key
// named by its kid (its RFC 7638 thumbprint), which tokens carry in their
// header. To rotate: add the new key to iopd's key file next to the old one,
// reload iopd, mint with the new key, and remove the old key once its
// tokens have expired.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "iopctl:", err)
		os.Exit(1)
	}
}

const usage = `iopctl: operator tool for iopd

  iopctl token -sub ID -name NAME -role ROLE -room ROOM [-kind KIND] [-program P] [-ttl 1h] [-url BASE] [-key private.pem]
        mint a token (or with -url a join link) from IOP_JWT_SECRET or a private key
  iopctl keygen -alg EdDSA|ES256 -out private.pem [-pub public.pem] [-jwks keys.json]
        make a signing key and print or store its public key for IOP_JWT_KEYS

Against the deployment's Redis (-redis URL or IOP_REDIS_URL):

  iopctl schedule example                         print the example program (a start for your own file)
  iopctl schedule check FILE.yaml                 validate a schedule file
  iopctl schedule seed FILE.yaml                  validate and store it
  iopctl schedule show PROGRAM [-week 2026-W49]   a week's sessions in the program's zone
  iopctl schedule holiday add|rm PROGRAM DATE
  iopctl schedule cancel|uncancel PROGRAM SESSION DATE [-reason TEXT]
  iopctl schedule book PROGRAM -client SUB -therapist SUB [-kind individual|family] -start "2026-12-01 14:00" [-length 50m]
  iopctl schedule unbook PROGRAM BOOKING-ID
  iopctl schedule feed PROGRAM SUB [-rotate | -revoke] [-url BASE]
  iopctl enroll PROGRAM SUB -track TRACK -start DATE [-cohort C1,C2] [-target-hours 9] [-target-days 3]
  iopctl enroll track PROGRAM SUB TRACK -effective DATE [-reason TEXT]
  iopctl enroll end PROGRAM SUB -date DATE -reason discharge|completion|step_down
  iopctl attendance report PROGRAM [-week 2026-W49] [-sub SUB]
  iopctl attendance export PROGRAM [-week 2026-W49] [-o FILE.csv]   ends with the chain head
  iopctl attendance billing PROGRAM [-week 2026-W49 | -from DATE -to DATE] [-o FILE.csv]  one line per client per date of service
  iopctl attendance absence PROGRAM SUB SESSION-ROOM excused|no_show|cancelled|none -author STAFF-SUB
  iopctl attendance correct PROGRAM -segment ID -start TIME -end TIME -reason TEXT -author STAFF-SUB
  iopctl attendance verify PROGRAM                exit status 1 if the event chain, a rollup or an exported head was altered
  iopctl attendance rebuild PROGRAM [-force]      recompute the rollups from the events (refuses a broken chain)
  iopctl audit show PROGRAM [-after ID] [-n 100]   a page of the program's audit trail
  iopctl audit verify PROGRAM                     exit status 1 if the audit chain was altered
  iopctl audit export PROGRAM [-o FILE.jsonl]     the whole trail as JSON lines
  iopctl audit trim PROGRAM                       remove entries older than IOP_AUDIT_RETENTION (six years)

The audit commands read the audit key from IOP_AUDIT_KEY or -key-file FILE ("hex:"
and hex digits, or raw bytes; at least 32 bytes), the same key as iopd. The
attendance commands read the attendance chain key the same way from
IOP_ATTENDANCE_KEY or -key-file FILE, and the keys it replaced from
IOP_ATTENDANCE_OLD_KEYS; verify, absence and correct also use IOP_AUDIT_KEY.

Run "iopctl COMMAND -h" for the flags of a command.
`

// run executes one iopctl command: args without the program name, getenv
// for IOP_* variables, results on stdout. Flag errors and -h come back as
// errors (flag.ErrHelp after printing usage on stdout).
func run(args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "token":
		return runToken(args[1:], getenv, stdout)
	case "keygen":
		return runKeygen(args[1:], stdout)
	case "schedule":
		return runSchedule(args[1:], getenv, stdout)
	case "enroll":
		return runEnroll(args[1:], getenv, stdout)
	case "attendance":
		return runAttendance(args[1:], getenv, stdout)
	case "audit":
		return runAudit(args[1:], getenv, stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return flag.ErrHelp
	}
	return fmt.Errorf("unknown command %q (want token, keygen, schedule, enroll, attendance or audit)", args[0])
}

// command is one subcommand's flags.
type command struct {
	*flag.FlagSet
	synopsis string
	stdout   io.Writer
}

// newCommand returns flags that report errors to their caller instead of
// printing them.
func newCommand(name, synopsis string, stdout io.Writer) *command {
	fs := flag.NewFlagSet("iopctl "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &command{FlagSet: fs, synopsis: synopsis, stdout: stdout}
}

// parse parses args, refusing leftover arguments; for -h it prints the
// usage on stdout and returns flag.ErrHelp.
func (c *command) parse(args []string) error {
	if err := c.parseFlags(args); err != nil {
		return err
	}
	if c.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments: %s", c.Name(), strings.Join(c.Args(), " "))
	}
	return nil
}

// parseArgs parses flags anywhere among the arguments and returns the
// positional ones, which must be exactly names.
func (c *command) parseArgs(args []string, names ...string) ([]string, error) {
	var pos []string
	for {
		if err := c.parseFlags(args); err != nil {
			return nil, err
		}
		args = c.Args()
		if len(args) == 0 {
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	if len(pos) != len(names) {
		return nil, fmt.Errorf("%s: want %s (usage: %s %s)", c.Name(), strings.Join(names, " "), c.Name(), c.synopsis)
	}
	return pos, nil
}

// parseFlags parses the flags up to the first positional argument; for -h
// it prints the usage on stdout and returns flag.ErrHelp.
func (c *command) parseFlags(args []string) error {
	if err := c.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(c.stdout, "usage: %s %s\n", c.Name(), c.synopsis)
			c.SetOutput(c.stdout)
			c.PrintDefaults()
			return err
		}
		return fmt.Errorf("%s: %w (run %q for usage)", c.Name(), err, c.Name()+" -h")
	}
	return nil
}
