package sfu

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// Connectivity probes answer the join page's check, before the person
// joins: can this browser reach the SFU over UDP, over TCP, through TURN?
// A probe is a PeerConnection with one data channel and no media, which
// connects or does not, then closes by itself.

// Probe limits: how many may run at once, how long one lives, and how long
// it stays up after connecting (the browser reads its result meanwhile).
const (
	maxProbes       = 16
	probeLife       = 20 * time.Second
	probeAfterReach = 3 * time.Second
	probeGather     = 3 * time.Second
	maxProbeOffer   = 16 << 10
)

// ErrBusy is returned when too many connectivity probes run already.
var ErrBusy = errors.New("sfu: too many connectivity checks at once")

// ErrNoTransport is returned for a probe of a transport that is off.
var ErrNoTransport = errors.New("sfu: transport not offered")

// probeAPIs builds one WebRTC stack per probed transport: UDP only, TCP
// only, and for relay both (the browser restricts itself to relays).
func probeAPIs(cfg Config, udp ice.UDPMux, tcp ice.TCPMux) (map[Transport]*webrtc.API, error) {
	out := map[Transport]*webrtc.API{}
	for _, t := range Transports {
		if t == TransportTCP && tcp == nil {
			continue
		}
		se := webrtc.SettingEngine{}
		quiet := logging.NewDefaultLoggerFactory()
		quiet.DefaultLogLevel = logging.LogLevelDisabled // a check the browser ends early is no error
		se.LoggerFactory = quiet
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
		if t != TransportTCP {
			se.SetICEUDPMux(udp)
		}
		if t != TransportUDP && tcp != nil {
			se.SetICETCPMux(tcp)
		}
		se.SetNetworkTypes(networkTypes(t != TransportTCP, t != TransportUDP && tcp != nil))
		if len(cfg.PublicIPs) > 0 {
			err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
				External: cfg.PublicIPs, AsCandidateType: webrtc.ICECandidateTypeHost, Mode: webrtc.ICEAddressRewriteReplace,
			})
			if err != nil {
				return nil, fmt.Errorf("public IP rewrite: %w", err)
			}
		}
		out[t] = webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(&webrtc.MediaEngine{}))
	}
	return out, nil
}

// ProbeTransports lists the transports a connectivity check can try.
func (s *SFU) ProbeTransports() []Transport {
	var out []Transport
	for _, t := range Transports {
		if s.probes[t] != nil {
			out = append(out, t)
		}
	}
	return out
}

// Probe answers a browser's connectivity-check offer (a data channel, all
// its candidates in the SDP) with a PeerConnection that gathers candidates
// of transport t only, and returns the complete answer. The PeerConnection
// closes by itself a few seconds after it connects, or after probeLife.
func (s *SFU) Probe(offer string, t Transport) (string, error) {
	api := s.probes[t]
	if api == nil {
		return "", ErrNoTransport
	}
	if len(offer) > maxProbeOffer || strings.Count(offer, "\nm=") != 1 || !strings.Contains(offer, "m=application") {
		return "", fmt.Errorf("%w: a check offers one data channel", ErrBadSDP)
	}
	select {
	case s.probeSlots <- struct{}{}:
	default:
		return "", ErrBusy
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		<-s.probeSlots
		return "", fmt.Errorf("connectivity check: %w", err)
	}
	s.probing.Add(1)
	done := make(chan struct{})
	var once sync.Once
	end := func() {
		once.Do(func() {
			close(done)
			_ = pc.Close()
			s.probing.Add(-1)
			<-s.probeSlots
		})
	}
	reached := make(chan struct{}, 1)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			select {
			case reached <- struct{}{}:
			default:
			}
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			go end()
		}
	})
	// One goroutine ends the probe: soon after it connects, or after its life.
	go func() {
		life := time.NewTimer(probeLife)
		defer life.Stop()
		select {
		case <-reached:
			after := time.NewTimer(probeAfterReach)
			defer after.Stop()
			select {
			case <-after.C:
			case <-done:
			}
		case <-life.C:
		case <-done:
		}
		end()
	}()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		end()
		return "", fmt.Errorf("%w: check offer: %v", ErrBadSDP, err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		end()
		return "", fmt.Errorf("%w: check answer: %v", ErrBadSDP, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		end()
		return "", fmt.Errorf("%w: check answer: %v", ErrBadSDP, err)
	}
	select {
	case <-gathered:
	case <-time.After(probeGather):
	case <-done:
		return "", ErrClosed
	}
	return pc.LocalDescription().SDP, nil
}
