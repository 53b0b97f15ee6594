package sfu

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/net/ipv4"
)

// Batched sends. A track's reader writes each incoming packet to every
// subscriber (forward), and pion takes each copy synchronously, on the
// reader's goroutine, through the interceptors, SRTP and the ICE mux down
// to the media socket's WriteTo: one sendto per copy. While a fan-out is
// open, the media sockets instead copy each datagram into a batch, and the
// fan-out's end sends the batch with one sendmmsg (Linux; elsewhere one
// sendmsg per datagram).
//
// Go has no goroutine identity, so a socket cannot tell which fan-out a
// write belongs to: each socket has one batch, shared by every writer, and
// while any fan-out is open on the node every write to it is queued, a
// keepalive or a DTLS record of another goroutine included. The rules that
// keep this correct:
//
//   - Every fan-out's end sends whatever its sockets hold, its own copies and
//     anyone else's, so nothing waits beyond the end of a fan-out that was
//     open when it was queued (a fan-out lasts one packet's copies: tens of
//     microseconds).
//   - A writer decides to queue, under the socket's lock, only while a
//     fan-out is open; an end closes its fan-out before it takes that lock to
//     send, so a write either lands in a batch the end sends or sees the
//     fan-out closed (and another open one, whose end sends it, or none, and
//     sends at once).
//   - A full batch is sent at once by the writer that filled it; a datagram
//     too large for a slot sends the batch and then goes by itself.
//   - Batches of one socket are sent in the order they were filled (the
//     sender takes the socket's send lock before it lets go of the batch
//     lock), so a stream's packets never overtake each other. An end whose
//     copies another writer's send has taken finds nothing left to send:
//     they are on their way, and its next batch waits for that send.
//
// Each socket keeps two batches, the one filling and the one sending, so
// nothing is allocated per packet. IOP_UDP_BATCH=off (Config.NoUDPBatch)
// turns it off: every write is one sendto, as pion does by itself.
type sendBatcher struct {
	open  atomic.Int32                   // fan-outs in progress
	socks atomic.Pointer[[]*batchSocket] // copy-on-write; added as sockets open

	addMu sync.Mutex

	calls     atomic.Uint64 // sendmmsg calls made
	datagrams atomic.Uint64 // datagrams they sent
}

const (
	// batchSlots is how many datagrams one sendmmsg carries at most: a
	// fan-out to a group of 15 is 14 copies, and concurrent fan-outs share
	// the batch.
	batchSlots = 32
	// batchSlotBytes holds any forwarded packet (maxPacket) with the SRTP
	// tag added.
	batchSlotBytes = maxPacket + 64
)

func newSendBatcher() *sendBatcher {
	b := &sendBatcher{}
	b.socks.Store(&[]*batchSocket{})
	return b
}

// begin opens a fan-out: until its end, the node's media sockets queue
// what is written to them. A nil batcher (batching off) does nothing.
func (b *sendBatcher) begin() {
	if b != nil {
		b.open.Add(1)
	}
}

// end closes a fan-out and sends everything its sockets queued.
func (b *sendBatcher) end() {
	if b == nil {
		return
	}
	b.open.Add(-1)
	for _, s := range *b.socks.Load() {
		s.mu.Lock()
		if s.cur.n > 0 {
			s.flush()
		} else {
			s.mu.Unlock()
		}
	}
}

// wrap makes udp a socket whose writes this batcher queues during
// fan-outs.
func (b *sendBatcher) wrap(udp *net.UDPConn) *batchSocket {
	s := &batchSocket{b: b, udp: udp, pc: ipv4.NewPacketConn(udp), cur: newSendBatch(), spare: newSendBatch()}
	b.addMu.Lock()
	old := *b.socks.Load()
	next := make([]*batchSocket, len(old), len(old)+1)
	copy(next, old)
	next = append(next, s)
	b.socks.Store(&next)
	b.addMu.Unlock()
	return s
}

// sockets returns the sockets whose writes the batcher queues (tests).
func (b *sendBatcher) sockets() []*batchSocket { return *b.socks.Load() }

// batchSocket is one media socket's send side.
type batchSocket struct {
	b   *sendBatcher
	udp *net.UDPConn
	pc  *ipv4.PacketConn

	mu  sync.Mutex
	cur *sendBatch // filling; guarded by mu

	sendMu sync.Mutex
	spare  *sendBatch // the last one sent, empty; guarded by sendMu
}

// sendBatch is a batch of datagrams in preallocated slots.
type sendBatch struct {
	n     int
	msgs  [batchSlots]ipv4.Message
	bufs  [batchSlots][1][]byte
	addrs [batchSlots]net.UDPAddr
	ips   [batchSlots][16]byte
	data  [batchSlots][batchSlotBytes]byte
}

func newSendBatch() *sendBatch {
	bt := &sendBatch{}
	for i := range bt.msgs {
		bt.msgs[i].Buffers = bt.bufs[i][:]
		bt.msgs[i].Addr = &bt.addrs[i]
	}
	return bt
}

// add copies a datagram into the next slot; the caller checked that one is
// free and that it fits.
func (bt *sendBatch) add(p []byte, to netip.AddrPort) {
	i := bt.n
	bt.n++
	bt.bufs[i][0] = bt.data[i][:copy(bt.data[i][:], p)]
	a := &bt.addrs[i]
	ip := to.Addr()
	if ip.Is4() {
		v := ip.As4()
		a.IP = bt.ips[i][:copy(bt.ips[i][:], v[:])]
	} else {
		v := ip.As16()
		a.IP = bt.ips[i][:copy(bt.ips[i][:], v[:])]
	}
	a.Port = int(to.Port())
	a.Zone = ip.Zone()
}

// writeTo sends p to to, or queues it while a fan-out is open.
func (s *batchSocket) writeTo(p []byte, to netip.AddrPort) (int, error) {
	if s.b.open.Load() == 0 {
		return s.udp.WriteToUDPAddrPort(p, to)
	}
	s.mu.Lock()
	if s.b.open.Load() == 0 || len(p) > batchSlotBytes {
		if s.cur.n > 0 {
			s.flush() // what was queued before goes first
		} else {
			s.mu.Unlock()
		}
		return s.udp.WriteToUDPAddrPort(p, to)
	}
	s.cur.add(p, to)
	if s.cur.n == batchSlots {
		s.flush()
	} else {
		s.mu.Unlock()
	}
	return len(p), nil
}

// flush sends the filling batch; it is called with mu held and a batch
// that is not empty, and returns with mu released. The send lock is taken
// before mu is released, so batches go out in the order they filled.
func (s *batchSocket) flush() {
	full := s.cur
	s.sendMu.Lock()
	s.cur, s.spare = s.spare, nil
	s.mu.Unlock()
	s.send(full)
	full.n = 0
	s.spare = full
	s.sendMu.Unlock()
}

// send writes a batch with as few sendmmsg calls as the kernel allows. A
// datagram the kernel refuses is dropped, as a failed sendto drops it
// (pion's candidate ignores write errors too); a closed socket drops all.
func (s *batchSocket) send(bt *sendBatch) {
	msgs := bt.msgs[:bt.n]
	for len(msgs) > 0 {
		n, err := s.pc.WriteBatch(msgs, 0)
		s.b.calls.Add(1)
		if n > 0 {
			s.b.datagrams.Add(uint64(n))
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			n = max(n, 0) + 1 // skip the refused one
		} else if n <= 0 {
			return
		}
		msgs = msgs[min(n, len(msgs)):]
	}
}
