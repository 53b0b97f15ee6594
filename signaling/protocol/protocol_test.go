package protocol

import (
	"encoding/json"
	"testing"
)

// TestEncodingsCarriesBothLists: an encodings message always carries its
// active and paused lists, empty or not, so that a client can read both.
func TestEncodingsCarriesBothLists(t *testing.T) {
	for _, tc := range []struct {
		m    ServerMessage
		want string
	}{
		{ServerMessage{Type: TypeEncodings, Mid: "1", Active: []string{"h"}, Paused: []string{"q", "f"}}, `{"type":"encodings","mid":"1","active":["h"],"paused":["q","f"]}`},
		{ServerMessage{Type: TypeEncodings, Mid: "0", Paused: []string{"q", "h", "f"}}, `{"type":"encodings","mid":"0","active":[],"paused":["q","h","f"]}`},
		{ServerMessage{Type: TypeEncodings, Mid: "2", Active: []string{"q", "h", "f"}}, `{"type":"encodings","mid":"2","active":["q","h","f"],"paused":[]}`},
	} {
		b, err := json.Marshal(tc.m)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("got %s, want %s", b, tc.want)
		}
	}
}
