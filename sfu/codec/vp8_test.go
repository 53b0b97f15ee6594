package codec

import "testing"

// TestVP8KeyframeStart: only the first packet of a keyframe counts, with
// or without the descriptor's optional fields; a delta frame, a packet in
// the middle of a frame, a later partition and a truncated descriptor do
// not.
func TestVP8KeyframeStart(t *testing.T) {
	cases := []struct {
		name    string
		payload []byte
		want    bool
	}{
		{"keyframe, bare descriptor", []byte{0x10, 0x00}, true},
		{"delta frame", []byte{0x10, 0x01}, false},
		{"not the start of a partition", []byte{0x00, 0x00}, false},
		{"start of partition 1", []byte{0x11, 0x00}, false},
		{"keyframe, 7-bit picture id", []byte{0x90, 0x80, 0x05, 0x00}, true},
		{"keyframe, 15-bit picture id", []byte{0x90, 0x80, 0x85, 0x05, 0x00}, true},
		{"delta, 15-bit picture id", []byte{0x90, 0x80, 0x85, 0x05, 0x01}, false},
		{"keyframe, picture id, TL0PICIDX and TID", []byte{0x90, 0xe0, 0x85, 0x05, 0x07, 0x40, 0x00}, true},
		{"delta, picture id, TL0PICIDX and TID", []byte{0x90, 0xe0, 0x85, 0x05, 0x07, 0x40, 0x01}, false},
		{"descriptor cut before the frame header", []byte{0x90, 0xe0, 0x85, 0x05, 0x07, 0x40}, false},
		{"one byte", []byte{0x10}, false},
		{"empty", nil, false},
	}
	for _, c := range cases {
		if got := VP8KeyframeStart(c.payload); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestVP8KeyframeStartAllocates: the parser runs on every forwarded video
// packet and must allocate nothing.
func TestVP8KeyframeStartAllocates(t *testing.T) {
	p := []byte{0x90, 0xe0, 0x85, 0x05, 0x07, 0x40, 0x00, 0x9d, 0x01, 0x2a}
	if n := testing.AllocsPerRun(1000, func() { VP8KeyframeStart(p) }); n != 0 {
		t.Fatalf("%v allocations per packet", n)
	}
}

func BenchmarkVP8KeyframeStart(b *testing.B) {
	p := []byte{0x90, 0xe0, 0x85, 0x05, 0x07, 0x40, 0x00, 0x9d, 0x01, 0x2a}
	for b.Loop() {
		VP8KeyframeStart(p)
	}
}
