package sfu

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

// What a publish PeerConnection tells the publisher about what arrived:
// NACKs for lost packets (every tick, each packet asked for at most
// nackTries times, held back while the node sheds: backlog.go) and a
// receiver report per stream every second (RFC 3550 6.4.2: loss, jitter,
// and the round trip the publisher's browser measures from it). Both are
// recorded on the goroutine that reads the packet and sent by the node's
// clock (rtcpclock.go), where pion's NACK generator and receiver-report
// interceptors each ran a goroutine per PeerConnection.

// nackWindow is how many recent sequence numbers a stream remembers, as
// pion's generator: about three seconds of 1.5 Mbps video.
const nackWindow = 512

// receivedStreams is the interceptor of one publish PeerConnection.
type receivedStreams struct {
	clocked
	ssrc    uint32                     // the server's, as the reports' sender
	streams map[uint32]*receivedStream // under clocked.mu
	due     []*receivedStream          // the tick's scratch, only on the clock's goroutine
	missing []uint16                   // likewise
}

// receivedStream is what arrived on one incoming stream.
type receivedStream struct {
	ssrc      uint32
	clockRate float64

	mu         sync.Mutex
	started    bool
	got        [nackWindow / 64]uint64 // which of the last nackWindow numbers arrived
	tries      [nackWindow]uint8       // NACKs sent for each
	max        uint16                  // highest sequence number
	consec     uint16                  // every number up to this one arrived or was given up
	cycles     uint32                  // wraps of the sequence number, <<16
	base       uint32                  // extended first sequence number
	received   uint32
	lastExp    uint32 // expected and received at the last report
	lastRecv   uint32
	transit    int64 // arrival minus RTP time of the last packet, in RTP units
	jitter     float64
	lastSR     uint32    // middle bits of the last sender report's NTP time
	lastSRTime time.Time // when it arrived
}

func newReceivedStreams(clock *rtcpClock) interceptor.Interceptor {
	r := &receivedStreams{ssrc: rand.Uint32(), streams: map[uint32]*receivedStream{}}
	r.clock, r.self = clock, r
	return r
}

// BindRemoteStream notes every packet of the stream.
func (r *receivedStreams) BindRemoteStream(info *interceptor.StreamInfo, rd interceptor.RTPReader) interceptor.RTPReader {
	st := &receivedStream{ssrc: info.SSRC, clockRate: float64(info.ClockRate)}
	r.mu.Lock()
	r.streams[info.SSRC] = st
	r.mu.Unlock()
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := rd.Read(b, a)
		if err != nil {
			return n, a, err
		}
		if n >= 12 { // read in place: parsing the header allocates
			st.arrived(binary.BigEndian.Uint16(b[2:]), binary.BigEndian.Uint32(b[4:]), time.Now())
		}
		return n, a, nil
	})
}

// UnbindRemoteStream forgets the stream.
func (r *receivedStreams) UnbindRemoteStream(info *interceptor.StreamInfo) {
	r.mu.Lock()
	delete(r.streams, info.SSRC)
	r.mu.Unlock()
}

// BindRTCPReader notes the publisher's sender reports, which a receiver
// report refers to so that the publisher can measure the round trip.
func (r *receivedStreams) BindRTCPReader(rd interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := rd.Read(b, a)
		if err != nil {
			return n, a, err
		}
		if a == nil {
			a = interceptor.Attributes{}
		}
		pkts, err := a.GetRTCPPackets(b[:n])
		if err != nil {
			return n, a, nil
		}
		now := time.Now()
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok {
				r.mu.Lock()
				st := r.streams[sr.SSRC]
				r.mu.Unlock()
				if st != nil {
					st.mu.Lock()
					st.lastSR, st.lastSRTime = uint32(sr.NTPTime>>16), now
					st.mu.Unlock()
				}
			}
		}
		return n, a, nil
	})
}

func (st *receivedStream) has(seq uint16) bool {
	i := seq % nackWindow
	return st.got[i/64]&(1<<(i%64)) != 0
}

func (st *receivedStream) set(seq uint16, on bool) {
	i := seq % nackWindow
	if on {
		st.got[i/64] |= 1 << (i % 64)
	} else {
		st.got[i/64] &^= 1 << (i % 64)
		st.tries[i] = 0
	}
}

// arrived records one packet.
func (st *receivedStream) arrived(seq uint16, ts uint32, now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.started {
		st.started = true
		st.max, st.consec, st.base = seq, seq, uint32(seq)
		st.set(seq, true)
		st.received = 1
		st.transit = int64(float64(now.UnixNano())*st.clockRate/1e9) - int64(ts)
		return
	}
	st.received++
	switch d := seq - st.max; {
	case d == 0:
		return // a duplicate
	case d < 1<<15: // newer
		if d >= nackWindow {
			clear(st.got[:])
			clear(st.tries[:])
			st.consec = seq - 1
		} else {
			for s := st.max + 1; s != seq; s++ {
				st.set(s, false)
			}
		}
		if seq < st.max {
			st.cycles += 1 << 16
		}
		st.max = seq
	default: // older: a retransmission or reordered
		if st.max-seq >= nackWindow {
			return
		}
	}
	st.set(seq, true)
	for st.consec != st.max && st.has(st.consec+1) {
		st.consec++
	}
	if st.max-st.consec >= nackWindow {
		st.consec = st.max - nackWindow + 1
	}
	// Interarrival jitter, RFC 3550 A.8.
	transit := int64(float64(now.UnixNano())*st.clockRate/1e9) - int64(ts)
	d := transit - st.transit
	st.transit = transit
	if d < 0 {
		d = -d
	}
	st.jitter += (float64(d) - st.jitter) / 16
}

// nack appends to missing the numbers still missing that may be asked for
// again, and counts the asking.
func (st *receivedStream) nack(missing []uint16) []uint16 {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.started || st.consec == st.max {
		return missing
	}
	for s := st.consec + 1; s != st.max; s++ {
		if st.has(s) {
			continue
		}
		if t := &st.tries[s%nackWindow]; *t < nackTries {
			*t++
			missing = append(missing, s)
		}
	}
	return missing
}

// report is the stream's reception report (RFC 3550 A.3).
func (st *receivedStream) report(now time.Time) (rtcp.ReceptionReport, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.started {
		return rtcp.ReceptionReport{}, false
	}
	ext := st.cycles | uint32(st.max)
	expected := ext - st.base + 1
	lost := int64(expected) - int64(st.received)
	lost = max(min(lost, 0x7fffff), -0x800000)
	expInt, recvInt := expected-st.lastExp, st.received-st.lastRecv
	st.lastExp, st.lastRecv = expected, st.received
	var fraction uint8
	if expInt > 0 && expInt > recvInt {
		fraction = uint8((expInt - recvInt) << 8 / expInt)
	}
	var delay uint32
	if !st.lastSRTime.IsZero() {
		delay = uint32(now.Sub(st.lastSRTime).Seconds() * 65536)
	}
	return rtcp.ReceptionReport{
		SSRC:               st.ssrc,
		FractionLost:       fraction,
		TotalLost:          uint32(lost) & 0xffffff,
		LastSequenceNumber: ext,
		Jitter:             uint32(st.jitter),
		LastSenderReport:   st.lastSR,
		Delay:              delay,
	}, true
}

func (r *receivedStreams) tick(now time.Time, n uint64) {
	r.mu.Lock()
	r.due = r.due[:0]
	for _, st := range r.streams {
		r.due = append(r.due, st)
	}
	r.mu.Unlock()
	var pkts []rtcp.Packet
	for _, st := range r.due {
		r.missing = st.nack(r.missing[:0])
		if len(r.missing) > 0 {
			pkts = append(pkts, &rtcp.TransportLayerNack{SenderSSRC: r.ssrc, MediaSSRC: st.ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers(r.missing)})
		}
		if n%reportTicks == 0 {
			if rep, ok := st.report(now); ok {
				pkts = append(pkts, &rtcp.ReceiverReport{SSRC: r.ssrc, Reports: []rtcp.ReceptionReport{rep}})
			}
		}
	}
	clear(r.due)
	// One packet per write, as pion's interceptors send them.
	for _, p := range pkts {
		r.write([]rtcp.Packet{p})
	}
}
