package sfu

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// tcpClientAPI is a pion client that cannot use UDP at all: it gathers only
// active TCP candidates, as a browser behind a firewall that blocks UDP.
func tcpClientAPI(t testing.TB) *webrtc.API {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

// TestICEOverTCP: with the media TCP port open, a client that can use only
// TCP hears and sees a client on UDP and the other way round, both
// through the one TCP port, and each participant's transport is what it
// uses.
func TestICEOverTCP(t *testing.T) {
	cfg := DefaultConfig()
	cfg.UDPAddr = "127.0.0.1:0"
	cfg.TCPAddr = "127.0.0.1:0"
	cfg.IncludeLoopback = true
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if s.TCPAddr() == nil {
		t.Fatal("no media TCP port")
	}
	r := s.Room("r")
	udp := joinPeer(t, r, "udp", true)
	tcp := joinPeerAPI(t, r, "tcp", true, tcpClientAPI(t))
	waitFor(t, "the TCP client receives the UDP client", func() bool {
		return tcp.packets("udp", "audio") > 10 && tcp.packets("udp", "video") > 10
	})
	waitFor(t, "the UDP client receives the TCP client", func() bool {
		return udp.packets("tcp", "audio") > 10 && udp.packets("tcp", "video") > 10
	})
	if got := tcp.part.Transport(); got != TransportTCP {
		t.Errorf("the TCP client's transport is %q, want tcp", got)
	}
	if got := udp.part.Transport(); got != TransportUDP {
		t.Errorf("the UDP client's transport is %q, want udp", got)
	}
	if st := s.Stats(); st.ByTransport[TransportTCP] != 1 || st.ByTransport[TransportUDP] != 1 {
		t.Errorf("participants by transport %v, want one on udp and one on tcp", st.ByTransport)
	}
	for _, p := range []*peer{udp, tcp} {
		if p.failed.Load() {
			t.Errorf("%s: media failed", p.part.id)
		}
	}
}

// candidateLog is a Signaler that keeps the server's candidates.
type candidateLog struct {
	mu    sync.Mutex
	cands []string
}

func (l *candidateLog) SendDescription(PC, webrtc.SessionDescription) {}
func (l *candidateLog) MediaFailed(PC)                                {}
func (l *candidateLog) SendEncodings(string, []string, []string)      {}
func (l *candidateLog) SendCandidate(_ PC, c *webrtc.ICECandidateInit) {
	if c != nil {
		l.mu.Lock()
		l.cands = append(l.cands, c.Candidate)
		l.mu.Unlock()
	}
}

func (l *candidateLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.cands...)
}

// TestTCPCandidateAnnounced: the server offers a passive TCP candidate on
// the media TCP port next to the UDP one, with the public address when one
// is configured.
func TestTCPCandidateAnnounced(t *testing.T) {
	cfg := DefaultConfig()
	cfg.UDPAddr = "127.0.0.1:0"
	cfg.TCPAddr = "127.0.0.1:0"
	cfg.IncludeLoopback = true
	cfg.PublicIPs = []string{"192.0.2.7"}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	log := &candidateLog{}
	part, err := s.Room("r").Join("a", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(part.Close)
	client, err := clientAPI(t, false).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	if _, err := client.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := client.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := part.HandleOffer(offer.SDP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a UDP and a TCP candidate", func() bool { return hasBoth(log.all()) })
	_, tcpPort, _ := net.SplitHostPort(s.TCPAddr().String())
	for _, c := range log.all() {
		if strings.Contains(c, " tcp ") && (!strings.Contains(c, "192.0.2.7 "+tcpPort+" typ host") || !strings.Contains(c, "tcptype passive")) {
			t.Errorf("TCP candidate %q: want 192.0.2.7 port %s, passive", c, tcpPort)
		}
	}
}

func hasBoth(cands []string) bool {
	var udp, tcp bool
	for _, c := range cands {
		udp = udp || strings.Contains(c, " udp ")
		tcp = tcp || strings.Contains(c, " tcp ")
	}
	return udp && tcp
}
