package sfu

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// TestFanOutSendsOneBatch: through real PeerConnections, a packet forwarded
// to four subscribers leaves the server in one sendmmsg, and every copy
// arrives; with IOP_UDP_BATCH=off the same packets arrive, one sendto each.
func TestFanOutSendsOneBatch(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("off=%v", off), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.UDPAddr = "127.0.0.1:0"
			cfg.IncludeLoopback = true
			cfg.NoUDPBatch = off
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			const n, packets = 4, 200
			r := s.Room("batch")
			pub := joinPeer(t, r, "pub", false)
			subsPeers := make([]*peer, n)
			for i := range subsPeers {
				subsPeers[i] = joinPeerAPI(t, r, fmt.Sprintf("sub%d", i), false, clientAPI(t, true))
			}
			// A track forwarded by hand: its packets are the only ones.
			video, ls := testTrack(pub.part, webrtc.RTPCodecTypeVideo, false, 0)
			for _, sp := range subsPeers {
				sp.part.subscribe(video)
			}
			waitFor(t, "the track bound at every subscriber", func() bool {
				for _, d := range *video.downs.Load() {
					if d.bound.Load() == nil {
						return false
					}
				}
				return len(*video.downs.Load()) == n
			})
			// Keyframes until every subscriber's PeerConnection carries
			// them (a down-track binds before DTLS is up).
			seq := uint16(0)
			waitFor(t, "every subscriber receives a keyframe", func() bool {
				startOnKeyframe(video, ls[0], seq)
				seq++
				for _, sp := range subsPeers {
					if sp.packets("pub", "video") == 0 {
						return false
					}
				}
				return true
			})
			time.Sleep(100 * time.Millisecond) // what is still on its way
			base := make([]int64, n)
			for i, sp := range subsPeers {
				base[i] = sp.packets("pub", "video")
			}
			before := s.Stats()
			pkt := testPacket()
			for i := 1; i <= packets; i++ {
				pkt.SequenceNumber = seq
				seq++
				pkt.Timestamp += 3000
				video.forward(pkt, ls[0])
				if i%10 == 0 {
					time.Sleep(5 * time.Millisecond) // a camera's pace, not a flood
				}
			}
			after := s.Stats()
			calls, datagrams := after.SendBatches-before.SendBatches, after.BatchedDatagrams-before.BatchedDatagrams
			t.Logf("%d fan-outs of %d: %d sendmmsg calls carried %d datagrams", packets, n, calls, datagrams)
			if off {
				if after.SendBatches != 0 || after.BatchedDatagrams != 0 {
					t.Errorf("batching off, yet %d sendmmsg calls", after.SendBatches)
				}
			} else {
				if datagrams < n*packets {
					t.Errorf("%d of the %d copies went through sendmmsg", datagrams, n*packets)
				}
				if calls > packets {
					t.Errorf("%d sendmmsg calls for %d fan-outs: not one each", calls, packets)
				}
			}
			for i, sp := range subsPeers {
				waitFor(t, sp.part.id+" receives every packet", func() bool {
					return sp.packets("pub", "video") == base[i]+packets
				})
			}
		})
	}
}

// TestEverySocketBatched: with the media port on every interface (one
// socket per local address), each socket batches, and a fan-out through
// them still reaches its subscribers.
func TestEverySocketBatched(t *testing.T) {
	cfg := DefaultConfig()
	cfg.UDPAddr = ":0"
	cfg.IncludeLoopback = true
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	socks := s.batch.sockets()
	if len(socks) == 0 || len(socks) != len(s.udpAddr) {
		t.Fatalf("%d batching sockets for %d listen addresses", len(socks), len(s.udpAddr))
	}
	wrapped := map[string]bool{}
	for _, b := range socks {
		wrapped[b.udp.LocalAddr().String()] = true
	}
	for _, a := range s.udpAddr {
		if !wrapped[a.String()] {
			t.Errorf("the socket on %s does not batch", a)
		}
	}
	t.Logf("%d sockets, one per local address, each batching", len(socks))
	r := s.Room("every")
	pub := joinPeer(t, r, "pub", true)
	a := joinPeer(t, r, "a", false)
	b := joinPeer(t, r, "b", false)
	for _, p := range []*peer{a, b} {
		waitFor(t, p.part.id+" receives the publisher", func() bool {
			return p.packets(pub.part.id, "video") > 20 && p.packets(pub.part.id, "audio") > 20
		})
	}
	// Every copy the subscribers received left in a batch (the two may
	// have connected through different sockets: then each fan-out is one
	// batch per socket). A copy is counted once its sendmmsg returns, so a
	// few may be read before they are counted.
	received := a.packets(pub.part.id, "video") + a.packets(pub.part.id, "audio") + b.packets(pub.part.id, "video") + b.packets(pub.part.id, "audio")
	if st := s.Stats(); st.SendBatches == 0 || int64(st.BatchedDatagrams) < received-batchSlots {
		t.Errorf("%d sendmmsg calls carried %d datagrams, the subscribers received %d", st.SendBatches, st.BatchedDatagrams, received)
	} else {
		t.Logf("%d sendmmsg calls carried %d datagrams, the subscribers received %d", st.SendBatches, st.BatchedDatagrams, received)
	}
}

// TestBatchUnderConcurrentFanOuts: several readers fan out at once on
// their own goroutines while another goroutine writes outside any fan-out
// (as ICE and DTLS do); every datagram arrives, each writer's in the order
// it wrote them, and nothing is left queued once the fan-outs have ended.
func TestBatchUnderConcurrentFanOuts(t *testing.T) {
	recv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	_ = recv.SetReadBuffer(4 << 20)
	sendConn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sendConn.Close()
	b := newSendBatcher()
	sock := b.wrap(sendConn)
	to := recv.LocalAddr().(*net.UDPAddr).AddrPort()

	const readers, fanOuts, copies = 4, 100, 7
	const lone = readers // the writer outside any fan-out
	const total = readers*fanOuts*copies + fanOuts
	got := make(chan [2]uint32, total)
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := recv.Read(buf)
			if err != nil {
				return
			}
			if n == 8 {
				got <- [2]uint32{binary.BigEndian.Uint32(buf), binary.BigEndian.Uint32(buf[4:])}
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range readers + 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := make([]byte, 8)
			binary.BigEndian.PutUint32(msg, uint32(w))
			seq := uint32(0)
			write := func() {
				binary.BigEndian.PutUint32(msg[4:], seq)
				seq++
				if _, err := sock.writeTo(msg, to); err != nil {
					t.Error(err)
				}
			}
			for range fanOuts {
				if w == lone {
					write()
				} else {
					b.begin()
					for range copies {
						write()
					}
					b.end()
				}
				if seq%50 == 0 {
					time.Sleep(time.Millisecond) // let the receiver keep up
				}
			}
		}()
	}
	wg.Wait()
	sock.mu.Lock()
	left := sock.cur.n
	sock.mu.Unlock()
	if left != 0 || b.open.Load() != 0 {
		t.Fatalf("%d datagrams left queued, %d fan-outs open, after every fan-out ended", left, b.open.Load())
	}
	next := make([]uint32, readers+1)
	deadline := time.After(10 * time.Second)
	for i := 0; i < total; i++ {
		select {
		case m := <-got:
			if m[1] != next[m[0]] {
				t.Fatalf("writer %d: datagram %d arrived when %d was next", m[0], m[1], next[m[0]])
			}
			next[m[0]]++
		case <-deadline:
			t.Fatalf("%d of %d datagrams arrived (per writer: %v)", i, total, next)
		}
	}
	if calls, dg := b.calls.Load(), b.datagrams.Load(); dg < readers*fanOuts*copies || calls > dg/2 {
		t.Errorf("%d sendmmsg calls carried %d datagrams of %d fan-outs' copies", calls, dg, readers*fanOuts*copies)
	}
}

// TestBatchSlotHoldsAnAddress: the slots take IPv4 and IPv6 destinations
// (with their zone) without allocating.
func TestBatchSlotHoldsAnAddress(t *testing.T) {
	bt := newSendBatch()
	v4 := netip.MustParseAddrPort("192.0.2.7:5004")
	v6 := netip.MustParseAddrPort("[fe80::1%eth0]:5006")
	p := []byte("rtp")
	if n := testing.AllocsPerRun(100, func() {
		bt.n = 0
		bt.add(p, v4)
		bt.add(p, v6)
	}); n != 0 {
		t.Errorf("queueing allocates %.1f times", n)
	}
	if got := bt.addrs[0].AddrPort(); got != v4 {
		t.Errorf("slot 0 sends to %v, want %v", got, v4)
	}
	if got := bt.addrs[1]; got.String() != "[fe80::1%eth0]:5006" {
		t.Errorf("slot 1 sends to %v, want %v", &got, v6)
	}
	if string(bt.bufs[1][0]) != "rtp" {
		t.Errorf("slot 1 holds %q", bt.bufs[1][0])
	}
}

// TestBatchedFanOutAllocatesNothing: queueing a fan-out's copies and
// sending them with sendmmsg on a real socket allocates nothing per packet.
func TestBatchedFanOutAllocatesNothing(t *testing.T) {
	recv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	b := newSendBatcher()
	sock := b.wrap(conn)
	to := recv.LocalAddr().(*net.UDPAddr).AddrPort()
	pkt := make([]byte, 1200)
	fanOut := func() {
		b.begin()
		for range 14 {
			_, _ = sock.writeTo(pkt, to)
		}
		b.end()
	}
	fanOut() // the first sendmmsg fills x/net's pool
	if calls, dg := b.calls.Load(), b.datagrams.Load(); calls != 1 || dg != 14 {
		t.Errorf("a fan-out of 14 took %d sendmmsg calls carrying %d datagrams, want 1 and 14", calls, dg)
	}
	if raceEnabled {
		t.Skip("under -race, sync.Pool drops x/net's sendmmsg buffers at random")
	}
	if n := testing.AllocsPerRun(200, fanOut); n != 0 {
		t.Errorf("a batched fan-out of 14 allocates %.1f times", n)
	}
	if calls, dg := b.calls.Load(), b.datagrams.Load(); dg != 14*calls {
		t.Errorf("%d sendmmsg calls carried %d datagrams, want 14 each", calls, dg)
	}
}
