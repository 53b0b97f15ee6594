package sfu

import (
	"strings"
	"testing"
)

func TestWithoutRepairStreams(t *testing.T) {
	offer := "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=ssrc-group:FID 111 222\r\n" +
		"a=ssrc:111 cname:x\r\na=ssrc:111 msid:s v\r\na=ssrc:222 cname:x\r\na=ssrc:222 msid:s v\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ssrc:333 cname:x\r\n"
	want := "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n" +
		"a=ssrc:111 cname:x\r\na=ssrc:111 msid:s v\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ssrc:333 cname:x\r\n"
	if got := withoutRepairStreams(offer); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	simulcast := "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rid:q send\r\na=simulcast:send q;h;f\r\n"
	if got := withoutRepairStreams(simulcast); got != simulcast {
		t.Errorf("an offer without FID groups changed: %q", got)
	}
}

// TestNoRepairStreamReader: a publisher whose offer names a repair stream
// for its video (as browsers' do) still reaches its subscribers, and the
// server runs no reader for a repair stream it never gets (the answer has
// no rtx payload type).
func TestNoRepairStreamReader(t *testing.T) {
	before := stacksCreatedBy("github.com/pion/webrtc/v4.(*RTPReceiver).maybeStartRepairStreamReader")
	s := newTestSFU(t)
	r := s.Room("rtx")
	a := joinPeer(t, r, "a", true)
	b := joinPeer(t, r, "b", false)
	waitFor(t, "b receives a's video", func() bool { return b.packets("a", "video") > 10 })
	if !strings.Contains(a.pub.LocalDescription().SDP, "a=ssrc-group:FID ") {
		t.Fatal("the publisher's offer names no repair stream: the test proves nothing")
	}
	for id, g := range stacksCreatedBy("github.com/pion/webrtc/v4.(*RTPReceiver).maybeStartRepairStreamReader") {
		if _, old := before[id]; !old {
			t.Errorf("a repair stream reader runs:\n%s", g)
		}
	}
}
