package sfu

import (
	"sync"
	"sync/atomic"
)

// cacheSlots is how many recent packets of a video track are indexed for
// retransmission (and how many outgoing numbers a down-track remembers):
// over a second at 1.5 Mbps.
const cacheSlots = 256

// maxPacket is the largest RTP packet kept.
const maxPacket = 1500

// The bytes a track's cache keeps: a second of the track at the rate it
// arrives (a NACK of a home connection comes within a few round trips, and
// each packet is asked for at most three times, 100 ms apart), never less
// than a large keyframe, never more than cacheMax. Before the track's rate
// is measured (its first half second) the cache holds cacheStart.
const (
	cacheMin   = 96 << 10
	cacheStart = 192 << 10
	cacheMax   = 512 << 10
)

// cacheBytes is the size of the ring for a track arriving at rate bits per
// second (0: not measured yet).
func cacheBytes(rate uint64) int {
	if rate == 0 {
		return cacheStart
	}
	return min(max(int(rate/8), cacheMin), cacheMax)
}

// packetCache keeps the last packets of one published track, as received, so
// that a subscriber's NACK is answered from one shared copy instead of a
// copy per subscriber. The packets lie one after another in a ring of bytes
// sized to the track's rate, so a low layer or an audio-sized stream holds
// little and a track that never sends holds nothing. The ring is allocated
// on the first packet and again only when the rate moves by more than an
// eighth: putting a packet allocates nothing.
type packetCache struct {
	mu   sync.Mutex
	ring []byte
	// total is how many bytes were written to the ring since it was made,
	// counting the end of the ring skipped when a packet did not fit: the
	// packet at position p lies at ring[p%len(ring):] and is intact while
	// total-p <= len(ring).
	total uint64
	index [cacheSlots]cacheEntry
}

type cacheEntry struct {
	pos   uint64
	n     uint16
	seq   uint16
	valid bool
}

// put stores a raw packet under its sequence number; rate is the track's
// measured bitrate (0 when not known yet).
func (c *packetCache) put(seq uint16, raw []byte, rate uint64) {
	n := len(raw)
	if n > maxPacket {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	want := cacheBytes(rate)
	if have := len(c.ring); have == 0 || (rate != 0 && (want > have+have/8 || want < have-have/8)) {
		c.ring, c.total, c.index = make([]byte, want), 0, [cacheSlots]cacheEntry{}
	}
	size := uint64(len(c.ring))
	if off := c.total % size; off+uint64(n) > size {
		c.total += size - off // the packet starts at the ring's beginning
	}
	copy(c.ring[c.total%size:], raw)
	c.index[seq%cacheSlots] = cacheEntry{pos: c.total, n: uint16(n), seq: seq, valid: true}
	c.total += uint64(n)
}

// get copies the packet with seq into dst and reports whether it was there.
func (c *packetCache) get(seq uint16, dst []byte) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.index[seq%cacheSlots]
	if !e.valid || e.seq != seq || c.total-e.pos > uint64(len(c.ring)) {
		return 0, false
	}
	off := e.pos % uint64(len(c.ring))
	return copy(dst, c.ring[off:off+uint64(e.n)]), true
}

// held is how many bytes the cache holds now.
func (c *packetCache) held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ring)
}

// sentMap remembers which published packet (layer and sequence number)
// each of a down-track's recent outgoing sequence numbers carried, so that a
// NACK for an outgoing number finds the right packet even after gaps were
// closed. The forwarder writes it, the RTCP reader reads it; each entry is
// one atomic word: valid bit, out, layer, in.
type sentMap [cacheSlots]atomic.Uint64

const sentValid = 1 << 48

func (m *sentMap) record(out uint16, layer uint8, in uint16) {
	m[out%cacheSlots].Store(sentValid | uint64(out)<<32 | uint64(layer)<<16 | uint64(in))
}

// lookup returns the layer and published sequence number sent as out.
func (m *sentMap) lookup(out uint16) (layer uint8, in uint16, ok bool) {
	v := m[out%cacheSlots].Load()
	if v&sentValid == 0 || uint16(v>>32) != out {
		return 0, 0, false
	}
	return uint8(v >> 16), uint16(v), true
}
