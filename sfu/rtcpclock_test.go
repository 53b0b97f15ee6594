package sfu

import (
	"bytes"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// twccClientAPI is a pion client that stamps transport-wide sequence
// numbers on what it sends, as browsers do, and runs no interceptor of its
// own that needs a goroutine: every interceptor goroutine in the process is
// then the server's.
func twccClientAPI(t testing.TB) *webrtc.API {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureTWCCHeaderExtensionSender(me, ir); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

// TestPeriodicRTCPOnOneGoroutine: a publisher gets transport-wide congestion
// control feedback (its browser sizes its upload by it) and a subscriber
// gets sender reports (its browser syncs audio and video by them), and no
// goroutine per PeerConnection sends them: with pion's interceptors each
// PeerConnection ran one per kind of report.
func TestPeriodicRTCPOnOneGoroutine(t *testing.T) {
	// Goroutines that an earlier test's clients left behind do not count.
	before := stacksCreatedBy("github.com/pion/interceptor")
	s := newTestSFU(t)
	r := s.Room("clock")
	a := joinPeerAPI(t, r, "a", true, twccClientAPI(t))
	b := joinPeerAPI(t, r, "b", false, twccClientAPI(t))
	waitFor(t, "b receives a", func() bool { return b.packets("a", "audio") > 5 && b.packets("a", "video") > 5 })

	var feedback, reports atomic.Int64
	for _, snd := range a.pub.GetSenders() {
		go func() {
			for {
				pkts, _, err := snd.ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range pkts {
					if _, ok := p.(*rtcp.TransportLayerCC); ok {
						feedback.Add(1)
					}
				}
			}
		}()
	}
	for _, rcv := range b.sub.GetReceivers() {
		go func() {
			for {
				pkts, _, err := rcv.ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range pkts {
					if _, ok := p.(*rtcp.SenderReport); ok {
						reports.Add(1)
					}
				}
			}
		}()
	}
	waitFor(t, "congestion control feedback at the publisher", func() bool { return feedback.Load() > 3 })
	waitFor(t, "sender reports at the subscriber", func() bool { return reports.Load() >= 2 })

	var loops []string
	for id, g := range stacksCreatedBy("github.com/pion/interceptor") {
		if _, old := before[id]; !old {
			loops = append(loops, g)
		}
	}
	if len(loops) > 0 {
		t.Errorf("%d interceptor goroutines for 2 participants (4 PeerConnections), want none:\n%s", len(loops), strings.Join(loops, "\n\n"))
	}
}

// stacksCreatedBy returns the stacks of the goroutines created by a
// function whose name begins with prefix, by goroutine id.
func stacksCreatedBy(prefix string) map[string]string {
	buf := make([]byte, 1<<22)
	found := map[string]string{}
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "created by "+prefix) {
			found[strings.SplitN(g, " ", 3)[1]] = g
		}
	}
	return found
}

// TestRTPExtension: the transport-wide sequence number is found in place in
// both forms of header extension, next to others, and not where it is not.
func TestRTPExtension(t *testing.T) {
	for _, profile := range []uint16{0xbede, 0x1000} {
		h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 7, CSRC: []uint32{1, 2}}
		h.Extension, h.ExtensionProfile = true, profile
		if err := h.SetExtension(1, []byte{9}); err != nil {
			t.Fatal(err)
		}
		if err := h.SetExtension(3, []byte{0x12, 0x34}); err != nil {
			t.Fatal(err)
		}
		b, err := (&rtp.Packet{Header: h, Payload: []byte{1, 2, 3}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if got := rtpExtension(b, 3); !bytes.Equal(got, []byte{0x12, 0x34}) {
			t.Errorf("profile %#x: extension 3 = %x, want 1234", profile, got)
		}
		if got := rtpExtension(b, 2); got != nil {
			t.Errorf("profile %#x: extension 2 = %x, want none", profile, got)
		}
		for n := range b[:len(b)-3] { // truncated anywhere in the header: no panic, nothing
			if got := rtpExtension(b[:n], 3); got != nil {
				t.Errorf("profile %#x: %d bytes gave %x", profile, n, got)
			}
		}
	}
	plain, _ := (&rtp.Packet{Header: rtp.Header{Version: 2}, Payload: []byte{0x10, 0, 0, 0}}).Marshal()
	if got := rtpExtension(plain, 1); got != nil {
		t.Errorf("a packet without extensions gave %x", got)
	}
}
