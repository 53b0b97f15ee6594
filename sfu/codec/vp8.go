// Package codec reads what the media plane needs of codec payloads: for
// VP8 (RFC 7741), whether an RTP packet starts a keyframe. The SFU uses it
// on the forwarding path (it allocates nothing) and the Go client to count
// the keyframes it receives: one parser for both.
package codec

// VP8KeyframeStart reports whether a VP8 RTP payload starts a keyframe: the
// start of partition 0 whose frame header has the inverse key frame bit
// clear (RFC 7741).
func VP8KeyframeStart(p []byte) bool {
	if len(p) < 2 || p[0]&0x10 == 0 || p[0]&0x07 != 0 {
		return false
	}
	i := 1
	if p[0]&0x80 != 0 { // X: extension byte follows
		x := p[1]
		i = 2
		if x&0x80 != 0 { // I: picture id, 1 or 2 bytes
			if i < len(p) && p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: TID/KEYIDX
			i++
		}
	}
	return i < len(p) && p[i]&0x01 == 0
}
