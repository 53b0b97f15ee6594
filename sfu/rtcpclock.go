package sfu

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// Periodic RTCP on one goroutine for the whole node.
//
// pion's interceptors that send RTCP on a timer (transport-wide congestion
// control feedback, sender reports) each run a goroutine per PeerConnection,
// and the congestion control one hands every incoming packet to its
// goroutine through a channel. Here the interceptors record what they see
// on the goroutine that reads or writes the packet, under a lock, and one
// clock per SFU sends what is due for every PeerConnection: no goroutine
// and no hand-off per PeerConnection.

// clockTick is the clock's period: transport-wide congestion control
// feedback goes out every tick (as pion's, and Chrome's, every 100 ms).
const clockTick = 100 * time.Millisecond

// reportTicks is how many ticks apart sender reports go out: every second,
// as pion's.
const reportTicks = 10

// ticker is a PeerConnection's periodic RTCP; n counts the clock's ticks.
type ticker interface {
	tick(now time.Time, n uint64)
}

// rtcpClock calls every registered ticker each clockTick, on one goroutine
// that the SFU starts and stops.
type rtcpClock struct {
	mu      sync.Mutex
	tickers map[ticker]struct{}
	once    sync.Once
	stopped chan struct{}
	done    chan struct{}
}

func startClock() *rtcpClock {
	c := &rtcpClock{tickers: map[ticker]struct{}{}, stopped: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

func (c *rtcpClock) add(t ticker) {
	c.mu.Lock()
	c.tickers[t] = struct{}{}
	c.mu.Unlock()
}

func (c *rtcpClock) remove(t ticker) {
	c.mu.Lock()
	delete(c.tickers, t)
	c.mu.Unlock()
}

// stop ends the clock's goroutine and waits for it.
func (c *rtcpClock) stop() {
	c.once.Do(func() { close(c.stopped) })
	<-c.done
}

func (c *rtcpClock) run() {
	defer close(c.done)
	t := time.NewTicker(clockTick)
	defer t.Stop()
	var due []ticker
	for n := uint64(1); ; n++ {
		select {
		case <-c.stopped:
			return
		case now := <-t.C:
			c.mu.Lock()
			due = due[:0]
			for k := range c.tickers {
				due = append(due, k)
			}
			c.mu.Unlock()
			for _, k := range due {
				k.tick(now, n)
			}
			clear(due)
		}
	}
}

// clocked is the part the interceptors below share: the PeerConnection's
// RTCP writer, and their place on the clock while they have one.
type clocked struct {
	interceptor.NoOp
	clock *rtcpClock
	self  ticker
	mu    sync.Mutex
	w     interceptor.RTCPWriter
}

// BindRTCPWriter takes the PeerConnection's RTCP writer and starts ticking.
func (c *clocked) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	c.mu.Lock()
	c.w = w
	c.mu.Unlock()
	c.clock.add(c.self)
	return w
}

// Close stops ticking: the PeerConnection closes.
func (c *clocked) Close() error {
	c.clock.remove(c.self)
	return nil
}

func (c *clocked) write(pkts []rtcp.Packet) {
	c.mu.Lock()
	w := c.w
	c.mu.Unlock()
	if w != nil && len(pkts) > 0 {
		_, _ = w.Write(pkts, nil)
	}
}

// clockedFactory makes one interceptor of kind per PeerConnection.
type clockedFactory struct {
	clock *rtcpClock
	make  func(*rtcpClock) interceptor.Interceptor
}

func (f clockedFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return f.make(f.clock), nil
}

// congestionFeedback records when each packet of a publish PeerConnection
// arrived by its transport-wide sequence number and sends the feedback
// (RFC 8888's predecessor, draft-holmer-rmcat-transport-wide-cc) that
// browsers size their upload by.
type congestionFeedback struct {
	clocked
	start time.Time
	rec   *twcc.Recorder // under clocked.mu
}

func newCongestionFeedback(clock *rtcpClock) interceptor.Interceptor {
	f := &congestionFeedback{start: time.Now(), rec: twcc.NewRecorder(rand.Uint32())}
	f.clock, f.self = clock, f
	return f
}

// BindRemoteStream records the arrival of each packet that carries a
// transport-wide sequence number.
func (f *congestionFeedback) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	var id uint8
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == sdp.TransportCCURI {
			id = uint8(e.ID)
		}
	}
	if id == 0 {
		return r
	}
	ssrc := info.SSRC
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := r.Read(b, a)
		if err != nil {
			return n, a, err
		}
		if e := rtpExtension(b[:n], id); len(e) >= 2 {
			at := time.Since(f.start).Microseconds()
			f.mu.Lock()
			f.rec.Record(ssrc, binary.BigEndian.Uint16(e), at)
			f.mu.Unlock()
		}
		return n, a, nil
	})
}

// rtpExtension returns the value of the header extension id of an RTP
// packet (RFC 8285, one- or two-byte form), or nil: the packet is read in
// place, where parsing the header would allocate for every packet.
func rtpExtension(b []byte, id uint8) []byte {
	if len(b) < 12 || b[0]&0x10 == 0 {
		return nil
	}
	at := 12 + 4*int(b[0]&0x0f)
	if len(b) < at+4 {
		return nil
	}
	profile := binary.BigEndian.Uint16(b[at:])
	end := at + 4 + 4*int(binary.BigEndian.Uint16(b[at+2:]))
	if len(b) < end {
		return nil
	}
	for i := at + 4; i < end; {
		var eid uint8
		var n int
		switch {
		case profile == 0xbede:
			if b[i] == 0 { // padding
				i++
				continue
			}
			eid, n = b[i]>>4, int(b[i]&0x0f)+1
			if eid == 15 {
				return nil
			}
			i++
		case profile&0xfff0 == 0x1000:
			if b[i] == 0 {
				i++
				continue
			}
			if i+1 >= end {
				return nil
			}
			eid, n = b[i], int(b[i+1])
			i += 2
		default:
			return nil
		}
		if i+n > end {
			return nil
		}
		if eid == id {
			return b[i : i+n]
		}
		i += n
	}
	return nil
}

func (f *congestionFeedback) tick(time.Time, uint64) {
	f.mu.Lock()
	pkts := f.rec.BuildFeedbackPacket()
	f.mu.Unlock()
	f.write(pkts)
}

// senderReports counts what a subscribe PeerConnection sends on each stream
// and sends a sender report for each every second: browsers need them to
// play a publisher's audio and video in sync.
type senderReports struct {
	clocked
	streams map[uint32]*sentStream // under clocked.mu
}

// sentStream is what one outgoing stream sent.
type sentStream struct {
	ssrc      uint32
	clockRate float64
	mu        sync.Mutex
	sent      bool
	lastTS    uint32    // RTP timestamp of the last frame begun
	lastAt    time.Time // when its first packet went out
	lastSeq   uint16
	packets   uint32
	octets    uint32
}

func newSenderReports(clock *rtcpClock) interceptor.Interceptor {
	s := &senderReports{streams: map[uint32]*sentStream{}}
	s.clock, s.self = clock, s
	return s
}

// BindLocalStream counts the stream's packets and notes the RTP timestamp
// of each frame as it begins.
func (s *senderReports) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	st := &sentStream{ssrc: info.SSRC, clockRate: float64(info.ClockRate)}
	s.mu.Lock()
	s.streams[info.SSRC] = st
	s.mu.Unlock()
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		st.sent1(h, len(payload))
		return w.Write(h, payload, a)
	})
}

// UnbindLocalStream forgets the stream.
func (s *senderReports) UnbindLocalStream(info *interceptor.StreamInfo) {
	s.mu.Lock()
	delete(s.streams, info.SSRC)
	s.mu.Unlock()
}

func (st *sentStream) sent1(h *rtp.Header, payload int) {
	st.mu.Lock()
	// In order (or the first): a retransmission or a late packet does not
	// move the timestamp mapping back.
	if d := h.SequenceNumber - st.lastSeq; !st.sent || (d > 0 && d < 1<<15) {
		st.lastSeq = h.SequenceNumber
		if !st.sent || h.Timestamp != st.lastTS {
			st.lastTS, st.lastAt = h.Timestamp, time.Now()
		}
		st.sent = true
	}
	st.packets++
	st.octets += uint32(payload)
	st.mu.Unlock()
}

// report is the stream's sender report at now, or nil before it sent
// anything (RFC 3550 6.4).
func (st *sentStream) report(now time.Time) rtcp.Packet {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.sent {
		return nil
	}
	return &rtcp.SenderReport{
		SSRC:        st.ssrc,
		NTPTime:     ntpTime(now),
		RTPTime:     st.lastTS + uint32(now.Sub(st.lastAt).Seconds()*st.clockRate),
		PacketCount: st.packets,
		OctetCount:  st.octets,
	}
}

func (s *senderReports) tick(now time.Time, n uint64) {
	if n%reportTicks != 0 {
		return
	}
	s.mu.Lock()
	pkts := make([]rtcp.Packet, 0, len(s.streams))
	for _, st := range s.streams {
		if r := st.report(now); r != nil {
			pkts = append(pkts, r)
		}
	}
	s.mu.Unlock()
	// One report per write, as pion's: a compound of many would pass the MTU.
	for _, p := range pkts {
		s.write([]rtcp.Packet{p})
	}
}

// ntpTime is t as a 64-bit NTP timestamp (seconds since 1900, 32.32 fixed
// point).
func ntpTime(t time.Time) uint64 {
	const unixToNTP = 2208988800 // seconds from 1900 to 1970
	ns := t.UnixNano()
	secs := uint64(ns/1e9) + unixToNTP
	frac := uint64(ns%1e9) << 32 / 1e9
	return secs<<32 | frac
}
