package sfu

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/packetio"
)

// Bounds on the queues in front of the track readers. When the machine
// cannot keep up, incoming media waits in pion's queues: first the ICE UDP
// mux's list per connection, which pion leaves unbounded (and holds every
// packet in an 8 KiB buffer), then the ICE agent's and the DTLS/SRTP
// demultiplexer's buffers (1 MB each per PeerConnection, fixed in pion), then
// one SRTP read buffer per incoming stream (1 MB by default: over 5 s of
// 1.5 Mbps video), which holds packets only until the track's reader
// attaches (push.go: from then on each packet is forwarded as it is
// written, and the demultiplexer's buffer is the last queue). Live therapy
// has no use for media that arrives seconds late, so the queues we can
// reach are cut to a few hundred milliseconds and drop what does not fit,
// and a track's reader skips any packet that waited longer than
// maxPacketAge in all of them together (the two pion keeps at 1 MB
// included); keyframe requests recover the picture, and NACKs are held
// back while the node sheds (nackGate).
//
// Every bound holds well over a normal burst: a keyframe of 1.5 Mbps video
// is about 30 KB (26 packets), six delta frames; a reader that keeps up
// takes a packet off each queue in microseconds, so the queues stay near
// empty and drop nothing unless a reader is starved of CPU for hundreds of
// milliseconds.
const (
	// muxQueuePackets bounds the packets the ICE UDP mux holds for one
	// remote address (one client's PeerConnection: video, audio and RTCP
	// bundled): at 1.5 Mbps video plus Opus, about 210 packets/s, 64 are
	// 300 ms and two keyframes, and at most 512 KiB of pion's buffers.
	muxQueuePackets = 64
	// rtpQueueBytes bounds each incoming RTP stream's SRTP read buffer:
	// two keyframes, 350 ms of 1.5 Mbps video.
	rtpQueueBytes = 64 << 10
	// rtpQueuePackets bounds the same buffer by count, for streams of small
	// packets: 1.3 s of Opus at 20 ms, 64 full-size video packets.
	rtpQueuePackets = 64
	// rtcpQueueBytes bounds each incoming RTCP stream (receiver reports,
	// NACKs, PLIs of a few dozen bytes each); pion's default is 100 KB.
	rtcpQueueBytes = 16 << 10
)

// shedMeter counts the packets the bounded queues drop and remembers when
// the last one was dropped: while the node sheds, it is overloaded.
type shedMeter struct {
	n    atomic.Uint64
	last atomic.Int64 // Unix nanoseconds of the last drop
}

func (m *shedMeter) add() {
	m.n.Add(1)
	m.last.Store(time.Now().UnixNano())
}

// addQuiet counts a drop that need not mean overload: a stream's buffer
// also fills when its track is read by nobody (over the track limit).
func (m *shedMeter) addQuiet() { m.n.Add(1) }

// shedding reports whether a packet was dropped within the last d.
func (m *shedMeter) shedding(d time.Duration) bool {
	last := m.last.Load()
	return last != 0 && time.Now().UnixNano()-last < int64(d)
}

// NACKs to publishers: pion's generator asks again for every packet still
// missing in a window of 512, every 100 ms, without limit, so shedding 70 %
// of a publisher's packets made it ask for over ten times what the
// publisher sends, and the retransmissions added to the load that made the
// node shed (measured with 4 groups of 15: the load generator's CPU rose,
// its original packets fell). So a packet is asked for at most nackTries
// times, within nackTries x 100 ms, and while the node sheds it is not asked
// for at all: asking would only bring more packets than it can take.
const (
	nackTries    = 3
	nackHoldback = time.Second // how long after the last drop NACKs stay held
)

// nackGate drops the NACKs that interceptors placed after it (pion's NACK
// generator) write while the node is shedding; every other RTCP passes.
type nackGate struct {
	interceptor.NoOp
	shed *shedMeter
}

// NewInterceptor implements interceptor.Factory: one gate serves every
// PeerConnection.
func (g *nackGate) NewInterceptor(string) (interceptor.Interceptor, error) { return g, nil }

func (g *nackGate) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, a interceptor.Attributes) (int, error) {
		if !g.shed.shedding(nackHoldback) {
			return w.Write(pkts, a)
		}
		kept := make([]rtcp.Packet, 0, len(pkts))
		for _, p := range pkts {
			if _, nack := p.(*rtcp.TransportLayerNack); !nack {
				kept = append(kept, p)
			}
		}
		if len(kept) == 0 {
			return 0, nil
		}
		return w.Write(kept, a)
	})
}

// newMediaQueue is the SettingEngine's BufferFactory: the SRTP read buffer
// of one incoming stream, bounded as above. Writes that do not fit fail with
// packetio.ErrFull, which pion's SRTP session treats as a dropped packet;
// shed counts them. The queues of incoming media are kept in pushed (nil:
// none), where a layer's reader finds its own (push.go).
func newMediaQueue(shed *shedMeter, pushed *pushStreams) func(packetio.BufferPacketType, uint32) io.ReadWriteCloser {
	return func(kind packetio.BufferPacketType, ssrc uint32) io.ReadWriteCloser {
		b := packetio.NewBuffer()
		q := &mediaQueue{Buffer: b, shed: shed}
		if kind == packetio.RTCPBufferPacket {
			b.SetLimitSize(rtcpQueueBytes)
			return q
		}
		b.SetLimitSize(rtpQueueBytes)
		b.SetLimitCount(rtpQueuePackets)
		if pushed != nil {
			if !pushed.add(ssrc, q) {
				_ = b.Close() // refused (push.go): nothing is kept for it
				return q
			}
			q.ssrc, q.pushed = ssrc, pushed
		}
		return q
	}
}

// mediaQueue adapts a packetio.Buffer to the io.ReadWriteCloser (with
// attributes) that pion's SRTP streams read from, and counts the packets it
// refuses. Once a reader is attached, the packets written to it are read
// and forwarded as they are written (push.go).
type mediaQueue struct {
	*packetio.Buffer
	shed *shedMeter

	ssrc   uint32
	pushed *pushStreams
	closed atomic.Bool

	mu      sync.Mutex
	readOne func() bool // the attached reader, nil when none
	end     func()
}

func (q *mediaQueue) Read(b []byte) (int, error) {
	n, _, err := q.Buffer.Read(b, nil)
	return n, err
}

func (q *mediaQueue) ReadWithAttributes(b []byte, a packetio.Attributes) (int, packetio.Attributes, error) {
	return q.Buffer.Read(b, a)
}

func (q *mediaQueue) Write(b []byte) (int, error) { return q.WriteWithAttributes(b, nil) }

func (q *mediaQueue) WriteWithAttributes(b []byte, a packetio.Attributes) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n, err := q.Buffer.Write(b, a)
	if errors.Is(err, packetio.ErrFull) {
		q.shed.addQuiet()
	}
	if err == nil && q.readOne != nil {
		q.drain()
	}
	return n, err
}

// backlog bounds the ICE UDP mux's queues, which pion does not: its socket
// reader (ice.UDPMuxDefault) appends every packet to a list per connection
// and nothing limits the list. The mux reads the socket through a
// countedSocket, which admits a packet only while fewer than limit packets
// from its sender are waiting; the ICE agent reads its connection through a
// countedConn, which counts them out. The count is per remote address, the
// key the mux itself routes by.
//
// The count starts when a connection first reads from an address, so
// packets the mux drops for lack of a connection are never counted, and it
// is forgotten when that connection closes. STUN is always admitted: it
// keeps the ICE session (and consent) alive however late it is.
type backlog struct {
	limit int32
	shed  *shedMeter

	mu     sync.RWMutex
	queued map[netip.AddrPort]*atomic.Int32
}

func newBacklog(limit int, shed *shedMeter) *backlog {
	return &backlog{limit: int32(limit), shed: shed, queued: map[netip.AddrPort]*atomic.Int32{}}
}

func (b *backlog) counter(from netip.AddrPort) *atomic.Int32 {
	b.mu.RLock()
	n := b.queued[from]
	b.mu.RUnlock()
	return n
}

// admit reports whether the mux may queue this packet from this sender.
func (b *backlog) admit(from netip.AddrPort, pkt []byte) bool {
	n := b.counter(from)
	if n == nil {
		return true
	}
	if n.Load() >= b.limit && !isSTUN(pkt) {
		b.shed.add()
		return false
	}
	n.Add(1)
	return true
}

// taken records that a connection's reader took a packet from this sender
// off the mux's queue; it reports whether the sender is new.
func (b *backlog) taken(from netip.AddrPort) (added bool) {
	n := b.counter(from)
	if n == nil {
		b.mu.Lock()
		if b.queued[from] == nil {
			b.queued[from] = new(atomic.Int32)
			added = true
		}
		b.mu.Unlock()
		return added
	}
	for {
		v := n.Load()
		if v <= 0 || n.CompareAndSwap(v, v-1) {
			return false
		}
	}
}

// isSTUN reports whether a packet is a STUN message the way pion's mux
// tells (stun.IsMessage): a 20-byte header with the magic cookie at byte 4.
func isSTUN(b []byte) bool {
	return len(b) >= 20 && binary.BigEndian.Uint32(b[4:8]) == 0x2112a442
}

// forget drops the counts of a closed connection's senders.
func (b *backlog) forget(from []netip.AddrPort) {
	b.mu.Lock()
	for _, a := range from {
		delete(b.queued, a)
	}
	b.mu.Unlock()
}

// waiting returns how many packets from this sender are queued, for tests.
func (b *backlog) waiting(from netip.AddrPort) int {
	if n := b.counter(from); n != nil {
		return int(n.Load())
	}
	return 0
}

// countedSocket is the media UDP socket as the ICE mux reads it. It keeps
// the socket's allocation-free netip reads and writes
// (ice.AddrPortReaderWriter).
type countedSocket struct {
	transport.UDPConn
	udp *net.UDPConn
	q   *backlog
	at  *arrivals
	out *batchSocket // nil: every write is its own sendto (batch.go)
}

var _ ice.AddrPortReaderWriter = (*countedSocket)(nil)

func (c *countedSocket) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, from, err := c.udp.ReadFromUDPAddrPort(b)
		if err != nil {
			return n, from, err
		}
		if c.q.admit(from, b[:n]) {
			c.at.record(b[:n])
			return n, from, nil
		}
	}
}

func (c *countedSocket) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

func (c *countedSocket) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	if c.out != nil {
		return c.out.writeTo(b, to)
	}
	return c.udp.WriteToUDPAddrPort(b, to)
}

func (c *countedSocket) WriteTo(b []byte, to net.Addr) (int, error) {
	if ua, ok := to.(*net.UDPAddr); ok && c.out != nil {
		return c.out.writeTo(b, ua.AddrPort())
	}
	return c.udp.WriteTo(b, to)
}

// newCountedSocket wraps a media socket; out, when not nil, batches its
// writes during fan-outs.
func newCountedSocket(udp *net.UDPConn, q *backlog, at *arrivals, out *sendBatcher) *countedSocket {
	c := &countedSocket{UDPConn: udp, udp: udp, q: q, at: at}
	if out != nil {
		c.out = out.wrap(udp)
	}
	return c
}

// countedNet hands the ICE mux counted sockets (ice.NewMultiUDPMuxFromPort
// opens its sockets itself, one per local address).
type countedNet struct {
	transport.Net
	q   *backlog
	at  *arrivals
	out *sendBatcher // nil: batching off
}

func (n countedNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	udp, ok := c.(*net.UDPConn)
	if !ok {
		return c, nil
	}
	return newCountedSocket(udp, n.q, n.at, n.out), nil
}

// countedMux is the ICE UDP mux whose connections count out what their
// readers take.
type countedMux struct {
	ice.UDPMux
	q *backlog
}

func (m countedMux) GetConn(ufrag string, addr net.Addr) (net.PacketConn, error) {
	c, err := m.UDPMux.GetConn(ufrag, addr)
	if err != nil {
		return nil, err
	}
	cc := &countedConn{PacketConn: c, q: m.q}
	if ap, ok := c.(ice.AddrPortReaderWriter); ok {
		return &countedAddrPortConn{countedConn: cc, ap: ap}, nil
	}
	return cc, nil
}

// countedConn is one ICE connection on the mux, as its agent reads it.
type countedConn struct {
	net.PacketConn
	q *backlog

	mu    sync.Mutex
	froms []netip.AddrPort // senders whose count this connection started
}

func (c *countedConn) took(from netip.AddrPort) {
	if c.q.taken(from) {
		c.mu.Lock()
		c.froms = append(c.froms, from)
		c.mu.Unlock()
	}
}

func (c *countedConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.PacketConn.ReadFrom(b)
	if ua, ok := from.(*net.UDPAddr); ok && err == nil {
		c.took(ua.AddrPort())
	}
	return n, from, err
}

func (c *countedConn) Close() error {
	err := c.PacketConn.Close()
	c.mu.Lock()
	froms := c.froms
	c.froms = nil
	c.mu.Unlock()
	c.q.forget(froms)
	return err
}

// countedAddrPortConn keeps the connection's allocation-free netip reads and
// writes.
type countedAddrPortConn struct {
	*countedConn
	ap ice.AddrPortReaderWriter
}

func (c *countedAddrPortConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, from, err := c.ap.ReadFromAddrPort(b)
	if err == nil {
		c.took(from)
	}
	return n, from, err
}

func (c *countedAddrPortConn) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	return c.ap.WriteToAddrPort(b, to)
}

// maxPacketAge is how long an RTP packet may have waited, from the media
// socket to its track's reader, and still be forwarded. pion's ICE agent and
// DTLS/SRTP demultiplexer each buffer up to 1 MB per PeerConnection (ice
// agent_config.go maxBufferSize, webrtc internal/mux maxBufferSize, both
// constants), over 5 s of 1.5 Mbps video; a reader finds out from the
// packet's arrival time what those queues cost it and skips what is stale
// instead of sending it to every subscriber. Normal waits are under a
// millisecond; a keyframe burst a few.
const maxPacketAge = 300 * time.Millisecond

// arrivalSlots is how many recent packets of one stream have their arrival
// time kept (a power of two): 4 s of 1.5 Mbps video.
const arrivalSlots = 1024

// arrivals records when the media socket received each RTP packet of the
// streams that are being read, by SSRC and sequence number (both in the
// clear in SRTP), so that readers can tell how long a packet waited.
type arrivals struct {
	base time.Time // times are microseconds since base, monotonic

	mu     sync.RWMutex
	bySSRC map[uint32]*arrivalLog
}

// arrivalLog holds, per slot, the sequence number (top 16 bits) and the
// arrival time in microseconds since base (low 48 bits) of a packet.
type arrivalLog [arrivalSlots]atomic.Uint64

func newArrivals() *arrivals {
	return &arrivals{base: time.Now(), bySSRC: map[uint32]*arrivalLog{}}
}

func (a *arrivals) now() uint64 { return uint64(time.Since(a.base) / time.Microsecond) }

// record notes the arrival of a packet if it is RTP of a stream being read
// (RFC 7983 and 5761: first byte 128-191, second byte not an RTCP type).
func (a *arrivals) record(pkt []byte) {
	if len(pkt) < 12 || pkt[0] < 128 || pkt[0] > 191 || (pkt[1] >= 192 && pkt[1] <= 223) {
		return
	}
	ssrc := binary.BigEndian.Uint32(pkt[8:12])
	a.mu.RLock()
	log := a.bySSRC[ssrc]
	a.mu.RUnlock()
	if log != nil {
		seq := uint64(binary.BigEndian.Uint16(pkt[2:4]))
		log[seq%arrivalSlots].Store(seq<<48 | a.now()&(1<<48-1))
	}
}

// watch starts recording the stream's arrivals for its reader.
func (a *arrivals) watch(ssrc uint32) *arrivalLog {
	log := new(arrivalLog)
	a.mu.Lock()
	a.bySSRC[ssrc] = log
	a.mu.Unlock()
	return log
}

// unwatch stops recording for a reader that has ended.
func (a *arrivals) unwatch(ssrc uint32, log *arrivalLog) {
	a.mu.Lock()
	if a.bySSRC[ssrc] == log {
		delete(a.bySSRC, ssrc)
	}
	a.mu.Unlock()
}

// stale reports whether the packet with this sequence number waited longer
// than maxPacketAge: its arrival is older, or its slot has since been taken
// by a packet arrivalSlots later. A packet whose arrival was not recorded
// (it came before the reader started) is not stale.
func (a *arrivals) stale(log *arrivalLog, seq uint16) bool {
	v := log[uint64(seq)%arrivalSlots].Load()
	if v == 0 {
		return false
	}
	if uint16(v>>48) != seq {
		return true
	}
	at := v & (1<<48 - 1)
	return a.now()-at > uint64(maxPacketAge/time.Microsecond)
}
