package sfu

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"iop/sfu/codec"
)

// TestUnwatchedLayersPause: a publisher sends three simulcast layers over a
// real PeerConnection and honours encodings messages as a browser does. With
// one subscriber on the medium layer (a grid tile), the server tells it to
// pause the low and high layers, naming its media section and rids, and
// they stop arriving. When the subscriber asks for the high layer, the
// server asks for it back at once and the subscriber gets it, from a
// keyframe on; the medium layer, now watched by nobody, is paused. When
// the subscriber leaves, the publisher keeps only the medium layer, the one
// a newcomer takes. Only the publisher is told.
func TestUnwatchedLayersPause(t *testing.T) {
	s := newTestSFU(t)
	r := s.Room("pause")
	var mu sync.Mutex
	var firstHigh *rtp.Packet
	highPackets := 0
	var toSubscriber []string
	sub := joinPeerAPI(t, r, "sub", false, clientAPI(t, true), func(p *peer) {
		p.encodings = func(mid string, _, _ []string) {
			mu.Lock()
			toSubscriber = append(toSubscriber, mid)
			mu.Unlock()
		}
		p.seen = func(track string, pkt *rtp.Packet) {
			if strings.HasPrefix(track, "pub/video") && len(pkt.Payload) > 2 && pkt.Payload[2] == layerHigh {
				mu.Lock()
				if firstHigh == nil {
					firstHigh = pkt.Clone()
				}
				highPackets++
				mu.Unlock()
			}
		}
	})
	type message struct {
		mid            string
		active, paused []string
	}
	var msgs []message
	var pub *simulcastPeer
	pub = joinSimulcast(t, r, "pub", func(p *peer) {
		p.encodings = func(mid string, active, paused []string) {
			mu.Lock()
			msgs = append(msgs, message{mid, active, paused})
			mu.Unlock()
			pub.setActive(active, paused)
		}
	})
	stop := make(chan struct{})
	defer close(stop)
	go pub.send(stop, func(int) bool { return false }) // keyframes when asked and on resuming only
	last := func() (message, int) {
		mu.Lock()
		defer mu.Unlock()
		if len(msgs) == 0 {
			return message{}, 0
		}
		return msgs[len(msgs)-1], len(msgs)
	}
	is := func(m message, active, paused []string) bool {
		return slices.Equal(m.active, active) && slices.Equal(m.paused, paused)
	}

	waitFor(t, "the subscriber receives the medium layer", func() bool { return sub.packets("pub", "video") > 20 })
	waitFor(t, "the low and high layers paused", func() bool {
		m, _ := last()
		return is(m, []string{"h"}, []string{"q", "f"})
	})
	if m, _ := last(); m.mid != pub.tc.Mid() {
		t.Errorf("encodings names media section %q, the video is %q", m.mid, pub.tc.Mid())
	}
	// What was in flight has arrived a second later; after that nothing
	// more of the paused layers comes, while the medium layer goes on.
	up := sub.part.downTrackFrom("pub")
	time.Sleep(layerIdle)
	lowAt, highAt, mediumAt := up.layers[layerLow].Load().lastAt.Load(), up.layers[layerHigh].Load().lastAt.Load(), up.layers[layerMedium].Load().lastAt.Load()
	waitFor(t, "more of the medium layer", func() bool { return up.layers[layerMedium].Load().lastAt.Load() > mediumAt })
	time.Sleep(layerIdle)
	if up.layers[layerLow].Load().lastAt.Load() != lowAt || up.layers[layerHigh].Load().lastAt.Load() != highAt {
		t.Error("the low or high layer still arrives after it was paused")
	}

	if err := sub.part.SetLayer("pub", "high"); err != nil {
		t.Fatal(err)
	}
	if m, _ := last(); !is(m, []string{"h", "f"}, []string{"q"}) {
		t.Errorf("after the subscriber asked for high: active %v, paused %v; want h and f active at once, q paused", m.active, m.paused)
	}
	waitFor(t, "the high layer at the subscriber", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return highPackets > 20
	})
	mu.Lock()
	if !codec.VP8KeyframeStart(firstHigh.Payload) {
		t.Errorf("the subscriber's first packet of the resumed layer is not a keyframe: % x", firstHigh.Payload)
	}
	mu.Unlock()
	waitFor(t, "the medium layer paused once nobody watches it", func() bool {
		m, _ := last()
		return is(m, []string{"f"}, []string{"q", "h"})
	})
	// The subscriber leaves: the medium layer, the one a newcomer takes,
	// comes back, and only it.
	sub.close()
	waitFor(t, "the medium layer alone once nobody receives the video", func() bool {
		m, _ := last()
		return is(m, []string{"h"}, []string{"q", "f"})
	})
	mu.Lock()
	defer mu.Unlock()
	if len(toSubscriber) != 0 {
		t.Errorf("the subscriber, who publishes nothing, was sent encodings for %q", toSubscriber)
	}
}

// downTrackFrom returns the published video track of publisher that p
// receives.
func (p *Participant) downTrackFrom(publisher string) *upTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	for u := range p.downs {
		if u.pub.id == publisher && u.kind.String() == "video" {
			return u
		}
	}
	return nil
}
