package sfu

import (
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// ICE over TCP: browsers whose network blocks outbound UDP (workplaces,
// hospitals, libraries) still reach the SFU directly over one TCP port, as
// passive TCP candidates announced next to the UDP one (RFC 6544). Like the
// UDP port, one listener serves every PeerConnection: pion's TCP mux tells
// connections apart by the ICE username of their first STUN request.

// Transport is how a participant's media reaches the server, as the
// therapist sees it and /metrics counts it.
type Transport string

// The transports, from the most direct to the least.
const (
	TransportUDP   Transport = "udp"   // straight to the media UDP port
	TransportTCP   Transport = "tcp"   // ICE over TCP to the media TCP port
	TransportRelay Transport = "relay" // through a TURN server
)

// Transports lists every transport, for metrics.
var Transports = []Transport{TransportUDP, TransportTCP, TransportRelay}

// TransportListener is implemented by a Signaler that wants to know how the
// participant's media travels once it connects, and whenever that changes.
type TransportListener interface {
	TransportChanged(t Transport)
}

// listenTCP opens the media TCP port for ICE over TCP, or returns nil when
// cfg.TCPAddr is empty.
func listenTCP(cfg Config) (ice.TCPMux, net.Addr, error) {
	if cfg.TCPAddr == "" {
		return nil, nil, nil
	}
	host, _, err := net.SplitHostPort(cfg.TCPAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("media TCP address %q: %w", cfg.TCPAddr, err)
	}
	if host != "" && net.ParseIP(host) == nil {
		return nil, nil, fmt.Errorf("media TCP address %q: host must be an IP address", cfg.TCPAddr)
	}
	ln, err := net.Listen("tcp4", cfg.TCPAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on media TCP port: %w", err)
	}
	quiet := logging.NewDefaultLoggerFactory()
	quiet.DefaultLogLevel = logging.LogLevelError
	mux := ice.NewTCPMuxDefault(ice.TCPMuxParams{
		Listener:       ln,
		Logger:         quiet.NewLogger("ice-tcp"),
		ReadBufferSize: 64,
		// As for the UDP socket, a bounded queue: a subscriber that cannot
		// take its packets loses some rather than growing memory.
		WriteBufferSize: 4 << 20,
	})
	return mux, ln.Addr(), nil
}

// networkTypes are the ICE networks the SFU gathers candidates on.
func networkTypes(udp, tcp bool) []webrtc.NetworkType {
	var nt []webrtc.NetworkType
	if udp {
		nt = append(nt, webrtc.NetworkTypeUDP4)
	}
	if tcp {
		nt = append(nt, webrtc.NetworkTypeTCP4)
	}
	return nt
}

// TCPAddr returns the address the media TCP port listens on, or nil when
// ICE over TCP is off.
func (s *SFU) TCPAddr() net.Addr { return s.tcpAddr }

// transportWatch follows which candidate pairs a participant's two
// PeerConnections use and reports the least direct one to the listener.
type transportWatch struct {
	l TransportListener

	notify sync.Mutex // keeps reports in order
	mu     sync.Mutex
	pairs  map[PC]*webrtc.ICECandidatePair
	relays map[string]bool // addresses of remote relay candidates
	last   Transport
}

func newTransportWatch(sig Signaler) *transportWatch {
	l, _ := sig.(TransportListener)
	return &transportWatch{l: l, pairs: map[PC]*webrtc.ICECandidatePair{}, relays: map[string]bool{}}
}

// watch follows the selected candidate pair of one PeerConnection.
func (w *transportWatch) watch(which PC, pc *webrtc.PeerConnection) {
	pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(func(p *webrtc.ICECandidatePair) {
		w.mu.Lock()
		w.pairs[which] = p
		w.mu.Unlock()
		w.report()
	})
}

// remoteCandidate notes a candidate the client trickled: a relay candidate
// makes the pair that uses its address a relayed one, also when the
// server's ICE agent first saw that address as peer-reflexive.
func (w *transportWatch) remoteCandidate(c webrtc.ICECandidateInit) {
	cand, err := ice.UnmarshalCandidate(c.Candidate)
	if err != nil || cand.Type() != ice.CandidateTypeRelay {
		return
	}
	w.mu.Lock()
	w.relays[net.JoinHostPort(cand.Address(), fmt.Sprint(cand.Port()))] = true
	w.mu.Unlock()
	w.report()
}

// current returns the least direct transport in use, or "" before any
// PeerConnection has connected.
func (w *transportWatch) current() Transport {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.currentLocked()
}

func (w *transportWatch) currentLocked() Transport {
	var t Transport
	for _, p := range w.pairs {
		if p == nil || p.Local == nil || p.Remote == nil {
			continue
		}
		pt := TransportUDP
		switch {
		case p.Remote.Typ == webrtc.ICECandidateTypeRelay || p.Local.Typ == webrtc.ICECandidateTypeRelay ||
			w.relays[net.JoinHostPort(p.Remote.Address, fmt.Sprint(p.Remote.Port))]:
			pt = TransportRelay
		case strings.EqualFold(p.Local.Protocol.String(), "tcp"):
			pt = TransportTCP
		}
		if rank(pt) > rank(t) {
			t = pt
		}
	}
	return t
}

func rank(t Transport) int {
	switch t {
	case TransportUDP:
		return 1
	case TransportTCP:
		return 2
	case TransportRelay:
		return 3
	}
	return 0
}

// report tells the listener when the transport changed.
func (w *transportWatch) report() {
	w.notify.Lock()
	defer w.notify.Unlock()
	w.mu.Lock()
	t := w.currentLocked()
	changed := t != "" && t != w.last
	if changed {
		w.last = t
	}
	w.mu.Unlock()
	if changed && w.l != nil {
		w.l.TransportChanged(t)
	}
}

// Transport returns how the participant's media travels now, or "" before
// it has connected.
func (p *Participant) Transport() Transport { return p.tw.current() }
