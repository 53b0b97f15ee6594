package sfu

import (
	"bytes"
	"testing"
)

// packetOf is a packet of n bytes whose every byte says which one it is.
func packetOf(seq uint16, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(seq) ^ byte(i)
	}
	return p
}

// TestCacheAnswersWhatItStillHolds: every packet of the last second is
// answered byte for byte, across the ring's wrap; older ones are reported
// missing, never returned overwritten.
func TestCacheAnswersWhatItStillHolds(t *testing.T) {
	var c packetCache
	const rate = 1_500_000 // bits per second: a ring of 187,500 bytes
	sizes := []int{1160, 300, 1160, 1160, 87, 1500, 640}
	var sent []uint16
	dst := make([]byte, maxPacket)
	for i := 0; i < 2000; i++ {
		seq := uint16(65000 + i) // wraps the sequence number too
		n := sizes[i%len(sizes)]
		c.put(seq, packetOf(seq, n), rate)
		sent = append(sent, seq)

		// Everything within the last 150 KB (well inside the ring) is there.
		held := 0
		for j := len(sent) - 1; j >= 0 && j > len(sent)-cacheSlots; j-- {
			s := sent[j]
			m := sizes[int(s-65000)%len(sizes)]
			held += m
			got, ok := c.get(s, dst)
			if held <= 150_000 && !ok {
				t.Fatalf("after %d packets, packet %d (%d KB back) is missing", i+1, s, held/1000)
			}
			if ok && !bytes.Equal(dst[:got], packetOf(s, m)) {
				t.Fatalf("after %d packets, packet %d came back overwritten", i+1, s)
			}
			if held > 200_000 && ok {
				t.Fatalf("packet %d, %d KB back, outlived a ring of %d bytes", s, held/1000, c.held())
			}
		}
	}
	if got := c.held(); got != 187_500 {
		t.Fatalf("a 1.5 Mbps track holds %d bytes, want a second of it (187,500)", got)
	}
	if _, ok := c.get(sent[len(sent)-1]+1, dst); ok {
		t.Fatal("a packet never put was found")
	}
}

// TestCacheSizedToRate: a track's cache follows its rate (a low simulcast
// layer holds little), is not remade for small changes (putting allocates
// nothing), and holds nothing before the first packet.
func TestCacheSizedToRate(t *testing.T) {
	var c packetCache
	if c.held() != 0 {
		t.Fatal("a track that never sent holds a ring")
	}
	raw := packetOf(1, 1000)
	c.put(1, raw, 0)
	if c.held() != cacheStart {
		t.Fatalf("before its rate is known a track holds %d bytes, want %d", c.held(), cacheStart)
	}
	c.put(2, raw, 150_000) // the quarter layer
	if c.held() != cacheMin {
		t.Fatalf("a 150 kbps layer holds %d bytes, want the minimum %d", c.held(), cacheMin)
	}
	c.put(3, raw, 3_000_000)
	if c.held() != 375_000 {
		t.Fatalf("a 3 Mbps track holds %d bytes, want 375,000", c.held())
	}
	c.put(4, raw, 3_300_000) // 10 % more: no new ring
	if c.held() != 375_000 {
		t.Fatalf("a 10 %% change remade the ring (%d bytes)", c.held())
	}
	if allocs := testing.AllocsPerRun(1000, func() { c.put(5, raw, 3_100_000) }); allocs != 0 {
		t.Fatalf("put allocates %.1f times per packet at a steady rate", allocs)
	}
	c.put(6, raw, 40_000_000)
	if c.held() != cacheMax {
		t.Fatalf("a 40 Mbps track holds %d bytes, want the cap %d", c.held(), cacheMax)
	}
	dst := make([]byte, maxPacket)
	if n, ok := c.get(6, dst); !ok || !bytes.Equal(dst[:n], raw) {
		t.Fatal("the packet put into the new ring is missing")
	}
	if _, ok := c.get(5, dst); ok {
		t.Fatal("a packet from before the ring was remade was found")
	}
	if _, ok := c.get(7, dst); ok {
		t.Fatal("a packet never put was found")
	}
	c.put(8, make([]byte, maxPacket+1), 40_000_000)
	if _, ok := c.get(8, dst); ok {
		t.Fatal("an oversized packet was kept")
	}
}
