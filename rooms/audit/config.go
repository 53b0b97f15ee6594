package audit

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MinKeyLen is the shortest audit key ParseKey accepts, in bytes.
const MinKeyLen = 32

// ParseKey reads an audit key as IOP_AUDIT_KEY (or a key file) holds it:
// "hex:" followed by hex digits, or else the raw bytes of the value (one
// trailing newline of a file is dropped). Either way the key must have at
// least MinKeyLen bytes. "" means no key: an unkeyed (SHA-256) chain.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
	if s == "" {
		return nil, nil
	}
	key := []byte(s)
	if h, ok := strings.CutPrefix(s, "hex:"); ok {
		var err error
		if key, err = hex.DecodeString(strings.TrimSpace(h)); err != nil {
			return nil, fmt.Errorf("audit key: after hex: want hex digits: %w", err)
		}
	}
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("audit key: %d bytes, want at least %d bytes (e.g. hex: and 64 hex digits from openssl rand -hex 32)", len(key), MinKeyLen)
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
