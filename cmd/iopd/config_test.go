package main

import (
	"io"
	"testing"
)

// TestUDPBatchSetting: IOP_UDP_BATCH is on unless set to off, and anything
// else is refused at start rather than read as one or the other.
func TestUDPBatchSetting(t *testing.T) {
	for _, tc := range []struct {
		env, want string
		ok        bool
	}{{"", "on", true}, {"on", "on", true}, {"off", "off", true}, {"no", "", false}} {
		env := map[string]string{"IOP_UDP_BATCH": tc.env}
		c, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
		if (err == nil) != tc.ok {
			t.Errorf("IOP_UDP_BATCH=%q: error %v", tc.env, err)
			continue
		}
		if err == nil && c.UDPBatch != tc.want {
			t.Errorf("IOP_UDP_BATCH=%q reads as %q, want %q", tc.env, c.UDPBatch, tc.want)
		}
	}
}
