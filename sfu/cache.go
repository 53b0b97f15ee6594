package sfu

import (
	"sync"
	"sync/atomic"
)

// cacheSlots is how many recent packets of a video track are kept for
// retransmission: about two seconds at 1.5 Mbps.
const cacheSlots = 256

// maxPacket is the largest RTP packet kept.
const maxPacket = 1500

// packetCache keeps the last packets of one published track, as received, so
// that a subscriber's NACK is answered from one shared copy instead of a
// copy per subscriber. Slots are preallocated: putting a packet allocates
// nothing.
type packetCache struct {
	mu    sync.Mutex
	slots [cacheSlots]cacheSlot
}

type cacheSlot struct {
	seq   uint16
	valid bool
	n     int
	buf   [maxPacket]byte
}

// put stores a raw packet under its sequence number.
func (c *packetCache) put(seq uint16, raw []byte) {
	if len(raw) > maxPacket {
		return
	}
	c.mu.Lock()
	s := &c.slots[seq%cacheSlots]
	s.seq, s.valid, s.n = seq, true, copy(s.buf[:], raw)
	c.mu.Unlock()
}

// get copies the packet with seq into dst and reports whether it was there.
func (c *packetCache) get(seq uint16, dst []byte) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.slots[seq%cacheSlots]
	if !s.valid || s.seq != seq {
		return 0, false
	}
	return copy(dst, s.buf[:s.n]), true
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
