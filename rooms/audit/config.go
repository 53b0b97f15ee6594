package audit

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"iop/rooms/chain"
)

// MinKeyLen is the shortest audit key ParseKey accepts, in bytes.
const MinKeyLen = chain.MinKeyLen

// ParseKey reads an audit key as IOP_AUDIT_KEY (or a key file) holds it
// (chain.ParseKey): "hex:" followed by hex digits, or else the raw bytes of
// the value; at least MinKeyLen bytes. "" means no key: an unkeyed
// (SHA-256) chain.
func ParseKey(s string) ([]byte, error) {
	key, err := chain.ParseKey(s)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	return key, nil
}

// ParseRetention reads IOP_AUDIT_RETENTION: a number of days ("2192d") or
// a Go duration ("52608h"); "" means DefaultRetention. It refuses what is
// shorter than MinRetention.
func ParseRetention(s string) (time.Duration, error) {
	if s == "" {
		return DefaultRetention, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*366 {
			return 0, fmt.Errorf("audit retention %q: want days such as 2192d, or a duration", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("audit retention %q: want days such as 2192d, or a duration: %w", s, err)
		}
	}
	if d < MinRetention {
		return 0, fmt.Errorf("audit retention %q: %w (%d days)", s, ErrRetention, MinRetention/(24*time.Hour))
	}
	return d, nil
}
