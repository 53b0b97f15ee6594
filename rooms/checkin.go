package rooms

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CheckIn is what a client confirms at the start of every telehealth
// session (docs/protocol.md, join): where they are now, for emergencies and
// licensure, whether that place is private, and a number to call them back
// on if the video drops. It is shown to the session's therapists and staff
// only, kept with the session's attendance and never logged.
type CheckIn struct {
	// Location is a US state or territory's postal code ("NY", "PR"), or
	// LocationOther with Other saying where.
	Location string `json:"location"`
	// Other is the place in words when Location is LocationOther.
	Other string `json:"other,omitempty"`
	// Private: the client says nobody else can hear them where they are.
	Private bool `json:"private"`
	// Phone is the callback number for this session.
	Phone string `json:"phone"`
}

// LocationOther is the location of a client outside the listed states and
// territories; CheckIn.Other then says where.
const LocationOther = "other"

// Bounds of a check-in's free text.
const (
	MaxCheckInOther = 80
	MaxCheckInPhone = 32
	minPhoneDigits  = 7
	maxPhoneDigits  = 15 // E.164, without an extension
)

// Locations are the postal codes of the US states, the District of
// Columbia and the territories a check-in may name.
var Locations = []string{
	"AK", "AL", "AR", "AS", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "GA", "GU", "HI", "IA", "ID",
	"IL", "IN", "KS", "KY", "LA", "MA", "MD", "ME", "MI", "MN", "MO", "MP", "MS", "MT", "NC", "ND",
	"NE", "NH", "NJ", "NM", "NV", "NY", "OH", "OK", "OR", "PA", "PR", "RI", "SC", "SD", "TN", "TX",
	"UT", "VA", "VI", "VT", "WA", "WI", "WV", "WY",
}

// ErrBadCheckIn is wrapped by CheckIn.Validate.
var ErrBadCheckIn = errors.New("bad check-in")

// Validate checks a check-in: a listed location (or "other" with 1 to 80
// printable characters saying where), and a phone number of 7 to 15 digits
// written with digits, spaces, "+", "-", ".", "(" and ")", and an optional
// extension after "x" or "ext", at most 32 characters in all. Surrounding
// spaces are trimmed first. The error wraps ErrBadCheckIn and names the
// field, never its value.
func (c *CheckIn) Validate() error {
	c.Location = strings.TrimSpace(c.Location)
	c.Other = strings.TrimSpace(c.Other)
	c.Phone = strings.TrimSpace(c.Phone)
	switch {
	case c.Location == LocationOther:
		if c.Other == "" || utf8.RuneCountInString(c.Other) > MaxCheckInOther || !printable(c.Other) {
			return fmt.Errorf("%w: other needs 1 to %d printable characters saying where you are", ErrBadCheckIn, MaxCheckInOther)
		}
	case slices.Contains(Locations, c.Location):
		if c.Other != "" {
			return fmt.Errorf("%w: other is only for location \"other\"", ErrBadCheckIn)
		}
	default:
		return fmt.Errorf("%w: location must be a US state or territory code (such as NY) or \"other\"", ErrBadCheckIn)
	}
	if !validPhone(c.Phone) {
		return fmt.Errorf("%w: phone must be a callback number of %d to %d digits (at most %d characters)", ErrBadCheckIn, minPhoneDigits, maxPhoneDigits, MaxCheckInPhone)
	}
	return nil
}

func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) })
}

// validPhone accepts numbers as people write them: "+1 (555) 010-0199",
// "555.010.0199 x12".
func validPhone(p string) bool {
	if p == "" || len(p) > MaxCheckInPhone {
		return false
	}
	number, ext := p, ""
	lower := strings.ToLower(p)
	for _, sep := range []string{"ext.", "ext", "x"} {
		if i := strings.Index(lower, sep); i >= 0 {
			number, ext = p[:i], strings.TrimSpace(p[i+len(sep):])
			if ext == "" || strings.ContainsFunc(ext, func(r rune) bool { return r < '0' || r > '9' }) {
				return false
			}
			break
		}
	}
	digits := 0
	for i, r := range number {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0, r == ' ', r == '-', r == '.', r == '(', r == ')':
		default:
			return false
		}
	}
	return digits >= minPhoneDigits && digits <= maxPhoneDigits
}
