package chain

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// MinKeyLen is the shortest chain key ParseKey accepts, in bytes.
const MinKeyLen = 32

// ParseKey reads a chain key as an IOP_*_KEY setting (or a key file) holds
// it: "hex:" followed by hex digits, or else the raw bytes of the value
// (one trailing newline of a file is dropped). Either way the key must have
// at least MinKeyLen bytes. "" means no key: an unkeyed (SHA-256) chain.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
	if s == "" {
		return nil, nil
	}
	key := []byte(s)
	if h, ok := strings.CutPrefix(s, "hex:"); ok {
		var err error
		if key, err = hex.DecodeString(strings.TrimSpace(h)); err != nil {
			return nil, fmt.Errorf("after hex: want hex digits: %w", err)
		}
	}
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("%d bytes, want at least %d bytes (e.g. hex: and 64 hex digits from openssl rand -hex 32)", len(key), MinKeyLen)
	}
	return key, nil
}

// KeyID names a key without revealing it: the first 16 hex digits of the
// HMAC of label under key ("" without a key). A chain's head records the
// KeyID of the key that wrote it, so that a node holding another key
// refuses to append instead of forking the chain. Each kind of chain uses
// its own label.
func KeyID(key []byte, label string) string {
	if len(key) == 0 {
		return ""
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	return hex.EncodeToString(m.Sum(nil))[:16]
}

// ParseKeys reads a list of chain keys (an IOP_*_OLD_KEYS setting): keys
// in ParseKey's format separated by commas or white space (a raw key that
// holds either is written hex:). "" is no key.
func ParseKeys(s string) ([][]byte, error) {
	var out [][]byte
	for i, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' }) {
		k, err := ParseKey(f)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		out = append(out, k)
	}
	return out, nil
}
