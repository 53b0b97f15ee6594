package sfu

import "strings"

// Repair streams (RTX, RFC 4588) in a publisher's offer.
//
// The server answers without the rtx payload type: a lost packet is asked
// for again with a NACK and comes back on the media stream itself, so a
// publisher never sends on its repair stream. Browsers still name one per
// video in their offer (a=ssrc-group:FID primary repair, and the repair
// SSRC's own a=ssrc lines), and pion then opens an SRTP read stream for it
// and starts a goroutine to read it as soon as the track is read: one
// goroutine and one read buffer per published video, for nothing. They are
// dropped from the offer before it is applied.

// withoutRepairStreams returns offer without its FID groups and the a=ssrc
// lines of their repair SSRCs.
func withoutRepairStreams(offer string) string {
	if !strings.Contains(offer, "a=ssrc-group:FID ") {
		return offer
	}
	lines := strings.SplitAfter(offer, "\n")
	repair := map[string]bool{}
	for _, l := range lines {
		if f, ok := strings.CutPrefix(l, "a=ssrc-group:FID "); ok {
			if ssrcs := strings.Fields(f); len(ssrcs) == 2 {
				repair[ssrcs[1]] = true
			}
		}
	}
	var b strings.Builder
	b.Grow(len(offer))
	for _, l := range lines {
		if f, ok := strings.CutPrefix(l, "a=ssrc-group:FID "); ok && len(strings.Fields(f)) == 2 {
			continue
		}
		if f, ok := strings.CutPrefix(l, "a=ssrc:"); ok {
			if ssrc, _, _ := strings.Cut(f, " "); repair[ssrc] {
				continue
			}
		}
		b.WriteString(l)
	}
	return b.String()
}
