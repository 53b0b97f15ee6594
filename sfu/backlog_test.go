package sfu

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/transport/v5/packetio"
	"github.com/pion/webrtc/v4"
)

// TestMediaQueueDropsWhenFull: the SRTP read buffer of an incoming stream
// whose reader has stalled refuses packets past its bound instead of
// growing, counts them as shed, and still hands over what it kept, oldest
// first.
func TestMediaQueueDropsWhenFull(t *testing.T) {
	cases := []struct {
		name     string
		kind     packetio.BufferPacketType
		size     int
		maxKept  int
		maxBytes int
	}{
		{"video", packetio.RTPBufferPacket, 1200, rtpQueueBytes / 1202, rtpQueueBytes},
		{"audio", packetio.RTPBufferPacket, 100, rtpQueuePackets, rtpQueueBytes},
		{"rtcp", packetio.RTCPBufferPacket, 60, rtcpQueueBytes / 62, rtcpQueueBytes},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var shed shedMeter
			q := newMediaQueue(&shed, nil)(c.kind, 1234)
			t.Cleanup(func() { _ = q.Close() })
			const sent = 2000
			pkt := make([]byte, c.size)
			kept := 0
			for i := range sent {
				pkt[0], pkt[1] = byte(i>>8), byte(i)
				if _, err := q.Write(pkt); err == nil {
					kept++
				} else if !errors.Is(err, packetio.ErrFull) {
					t.Fatalf("write %d: %v", i, err)
				}
			}
			if kept == 0 || kept > c.maxKept {
				t.Errorf("kept %d of %d packets of %d bytes, want 1 to %d", kept, sent, c.size, c.maxKept)
			}
			if size := q.(*mediaQueue).Size(); size > c.maxBytes {
				t.Errorf("queue holds %d bytes, bound is %d", size, c.maxBytes)
			}
			if got := shed.n.Load(); got != uint64(sent-kept) {
				t.Errorf("shed counts %d, %d were refused", got, sent-kept)
			}
			buf := make([]byte, 1500)
			for i := range kept {
				n, err := q.Read(buf)
				if err != nil || n != c.size || int(buf[0])<<8|int(buf[1]) != i {
					t.Fatalf("read %d: %d bytes, seq %d, %v; want the oldest kept packet", i, n, int(buf[0])<<8|int(buf[1]), err)
				}
			}
		})
	}
}

// TestBacklogBoundsMuxQueue: pion's ICE UDP mux queues packets for a
// connection whose reader does not read, without limit; through the
// counted socket and connection it holds at most muxQueuePackets of them
// per sender (STUN always passes), and the flow resumes once the reader
// catches up.
func TestBacklogBoundsMuxQueue(t *testing.T) {
	var shed shedMeter
	q := newBacklog(muxQueuePackets, &shed)
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	inner := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: &countedSocket{UDPConn: udp, udp: udp, q: q, at: newArrivals()}})
	t.Cleanup(func() { _ = inner.Close() })
	mux := countedMux{UDPMux: inner, q: q}
	conn, err := mux.GetConn("ufrag", udp.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	apConn, ok := conn.(ice.AddrPortReaderWriter)
	if !ok {
		t.Fatalf("the counted connection %T lost the allocation-free netip reads", conn)
	}

	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	from := client.LocalAddr().(*net.UDPAddr).AddrPort()
	// The connection sends first, as ICE does: the mux now routes this
	// client's packets to it.
	if _, err := conn.WriteTo([]byte("hello"), client.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	read := func() (int, netip.AddrPort) {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, addr, err := apConn.ReadFromAddrPort(buf)
		if err != nil {
			t.Fatalf("read from the mux: %v", err)
		}
		return n, addr
	}
	send := func(p []byte) {
		t.Helper()
		if _, err := client.WriteTo(p, udp.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	media := make([]byte, 1000)
	send(media)
	if _, addr := read(); addr != from {
		t.Fatalf("read a packet from %v, want %v", addr, from)
	}

	// The reader stalls while the client sends ten times the bound, paced
	// so that the kernel's socket buffer does not overflow first.
	const sent = 10 * muxQueuePackets
	for i := range sent {
		send(media)
		if i%16 == 15 {
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(t, "the mux to queue the bound and shed the rest", func() bool {
		return q.waiting(from) == muxQueuePackets && shed.n.Load() > 0
	})
	stun := make([]byte, 20)
	stun[4], stun[5], stun[6], stun[7] = 0x21, 0x12, 0xa4, 0x42
	send(stun)
	waitFor(t, "the STUN message to be queued past the bound", func() bool {
		return q.waiting(from) == muxQueuePackets+1
	})

	for range muxQueuePackets + 1 {
		read()
	}
	if n := q.waiting(from); n != 0 {
		t.Errorf("%d packets counted as waiting after the reader took all", n)
	}
	if got, want := shed.n.Load(), uint64(sent-muxQueuePackets); got > want {
		t.Errorf("shed %d packets, more than the %d past the bound", got, want)
	}
	send([]byte("after"))
	if n, _ := read(); string(buf[:n]) != "after" {
		t.Errorf("read %q after the backlog, want the next packet sent", buf[:n])
	}

	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if q.counter(from) != nil {
		t.Error("a closed connection's sender is still counted")
	}
}

// TestStalledReaderShedsThroughPeerConnections: with the SFU's WebRTC stack,
// a track whose reader stalls while its publisher sends six times the bound
// keeps only the bound queued (pion's default would keep a megabyte, all of
// it here) and delivers at most that much once the reader resumes.
func TestStalledReaderShedsThroughPeerConnections(t *testing.T) {
	s := newTestSFU(t)
	recv, err := s.pubs.api(nil, nil).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = recv.Close() })
	send, err := clientAPI(t, true).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = send.Close() })
	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "v", "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := send.AddTrack(video); err != nil {
		t.Fatal(err)
	}
	tracks := make(chan *webrtc.TrackRemote, 1)
	recv.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { tracks <- tr })
	connected := make(chan struct{})
	recv.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			close(connected)
		}
	})
	exchange := func(from, to *webrtc.PeerConnection, d webrtc.SessionDescription) webrtc.SessionDescription {
		t.Helper()
		done := webrtc.GatheringCompletePromise(from)
		if err := from.SetLocalDescription(d); err != nil {
			t.Fatal(err)
		}
		<-done
		if err := to.SetRemoteDescription(*from.LocalDescription()); err != nil {
			t.Fatal(err)
		}
		return *from.LocalDescription()
	}
	offer, err := send.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	exchange(send, recv, offer)
	answer, err := recv.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	exchange(recv, send, answer)
	select {
	case <-connected:
	case <-time.After(20 * time.Second):
		t.Fatal("PeerConnections did not connect")
	}

	// Sends paced so that no queue in front of the SRTP stream overflows:
	// only the stream's own buffer, which nobody reads, may drop.
	const sent = 6 * rtpQueuePackets
	payload := make([]byte, 1000)
	var tr *webrtc.TrackRemote
	for i := range sent {
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i), Timestamp: uint32(i) * 3000}, Payload: payload}
		if err := video.WriteRTP(pkt); err != nil {
			t.Fatal(err)
		}
		if i%16 == 15 {
			time.Sleep(2 * time.Millisecond)
		}
		if tr == nil {
			select {
			case tr = <-tracks:
			default:
			}
		}
	}
	// Once the count stops moving nothing is in flight any more (on a
	// loaded machine packets still trickle in after the sends), so what
	// the reader finds is what the bound kept.
	var last uint64
	var since time.Time
	waitFor(t, "the stalled stream to shed what exceeds its bound", func() bool {
		n := s.Stats().PacketsShed
		if n != last {
			last, since = n, time.Now()
		}
		return n >= sent-2*rtpQueuePackets && time.Since(since) > 500*time.Millisecond
	})
	if tr == nil {
		tr = <-tracks
	}
	buf := make([]byte, 1500)
	delivered := 0
	for {
		_ = tr.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, _, err := tr.Read(buf); err != nil {
			break
		}
		delivered++
	}
	if delivered == 0 || delivered > rtpQueuePackets+1 {
		t.Errorf("the stalled reader got %d of %d packets afterwards, want 1 to %d (the bound)", delivered, sent, rtpQueuePackets+1)
	}
}

// TestArrivalsTellStalePackets: a reader skips a packet that waited longer
// than maxPacketAge since the socket received it, or that arrivalSlots
// later packets have overtaken; not one it has no arrival time for.
func TestArrivalsTellStalePackets(t *testing.T) {
	a := newArrivals()
	rtpPkt := func(ssrc uint32, seq uint16) []byte {
		p := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, SSRC: ssrc}, Payload: []byte{1}})
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a.record(rtpPkt(7, 1)) // nobody reads SSRC 7 yet: not recorded
	log := a.watch(7)
	if a.stale(log, 1) {
		t.Error("a packet that arrived before its reader started counts as stale")
	}
	a.record(rtpPkt(7, 2))
	a.record(rtpPkt(8, 3)) // another stream
	rtcpPkt := rtpPkt(7, 4)
	rtcpPkt[1] = 200 // a sender report, not RTP
	a.record(rtcpPkt)
	if a.stale(log, 2) {
		t.Error("a packet that just arrived counts as stale")
	}
	if log[3].Load() != 0 || log[4].Load() != 0 {
		t.Error("another stream's packet or an RTCP packet was recorded")
	}
	a.base = a.base.Add(-maxPacketAge - time.Millisecond) // the clock moves on
	if !a.stale(log, 2) {
		t.Errorf("a packet that waited over %v is not stale", maxPacketAge)
	}
	a.record(rtpPkt(7, 5))
	a.record(rtpPkt(7, 5+arrivalSlots))
	if !a.stale(log, 5) {
		t.Error("a packet overtaken by arrivalSlots later ones is not stale")
	}
	if a.stale(log, 5+arrivalSlots) {
		t.Error("the packet that just arrived counts as stale")
	}
	a.unwatch(7, log)
	a.record(rtpPkt(7, 6))
	if log[6].Load() != 0 {
		t.Error("recorded for a reader that has ended")
	}
}

// TestNACKGateHoldsBackWhileShedding: NACKs pass until the node drops a
// packet for overload, then are held back for nackHoldback while keyframe
// requests still pass; a drop that need not mean overload holds nothing.
func TestNACKGateHoldsBackWhileShedding(t *testing.T) {
	var shed shedMeter
	var got []rtcp.Packet
	w := (&nackGate{shed: &shed}).BindRTCPWriter(interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, _ interceptor.Attributes) (int, error) {
		got = append(got, pkts...)
		return 0, nil
	}))
	nack := &rtcp.TransportLayerNack{MediaSSRC: 1, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{5})}
	pli := &rtcp.PictureLossIndication{MediaSSRC: 1}
	write := func() []rtcp.Packet {
		got = nil
		if _, err := w.Write([]rtcp.Packet{nack, pli}, nil); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if n := len(write()); n != 2 {
		t.Errorf("before any drop the gate passed %d of 2 packets", n)
	}
	shed.addQuiet()
	if n := len(write()); n != 2 {
		t.Errorf("after a quiet drop the gate passed %d of 2 packets", n)
	}
	shed.add()
	if p := write(); len(p) != 1 || p[0] != pli {
		t.Errorf("while shedding the gate passed %v, want the PLI only", p)
	}
	shed.last.Store(time.Now().Add(-nackHoldback - time.Millisecond).UnixNano())
	if n := len(write()); n != 2 {
		t.Errorf("%v after the last drop the gate passed %d of 2 packets", nackHoldback, n)
	}
}
