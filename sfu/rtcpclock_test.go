package sfu

import (
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
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
