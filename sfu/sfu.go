// Package sfu is the media plane: per-participant publish and subscribe
// PeerConnections on pion/webrtc, track fan-out within a room, keyframe
// requests and ICE on a single UDP port. It knows nothing of tokens, roles or
// the signaling wire format; the signaling layer drives it through Room and
// Participant and receives what must go to the client through Signaler.
package sfu

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/sdp/v3"
	"github.com/pion/transport/v5/packetio"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
)

// Config is the media plane's configuration.
type Config struct {
	// UDPAddr is where the one media port listens, as host:port. An empty or
	// unspecified host listens on every interface; port 0 picks a free port.
	UDPAddr string
	// TCPAddr is where the media TCP port for ICE over TCP listens, as
	// host:port; empty turns ICE over TCP off. Port 0 picks a free port.
	TCPAddr string
	// PublicIPs, when set, replace the host addresses announced in ICE
	// candidates (NAT, Kubernetes node address).
	PublicIPs []string
	// IncludeLoopback announces loopback candidates too (tests, a browser on
	// the same machine).
	IncludeLoopback bool
	// KeyframeInterval is the shortest time from the last keyframe seen on
	// any layer of a published track to a keyframe request (PLI) for it:
	// Chrome ignores requests within about 0.3-0.5 s of its last keyframe.
	// It is also the shortest time between two requests.
	KeyframeInterval time.Duration
	// KeyframeRetryMax bounds the wait before asking again for a keyframe
	// that has not come: the first retry follows 2 KeyframeInterval after
	// the request, each next one twice as long as the last, up to this.
	KeyframeRetryMax time.Duration
	// KeyframeWaitLog is how long a subscriber's video may wait for a
	// keyframe (to start, or to switch layer) before the wait is logged.
	KeyframeWaitLog time.Duration
	// MaxTracksPerParticipant bounds what one publisher may send: a
	// publish offer that sends more tracks is refused (ErrTooManyTracks),
	// and tracks beyond it that arrive anyway are not forwarded.
	MaxTracksPerParticipant int
	// MaxCandidatesPerPC bounds the remote ICE candidates one
	// PeerConnection takes per remote description (held before it or
	// added after it); more are refused (ErrTooManyCandidates).
	MaxCandidatesPerPC int
	// MaxOffersPerMinute bounds the publish offers (renegotiations, ICE
	// restarts included) one participant may send in a minute, bursts of
	// as many; more are refused (ErrTooManyOffers).
	MaxOffersPerMinute int
	// NoUDPBatch sends every copy of a forwarded packet with a sendto of
	// its own, as pion does, instead of one sendmmsg per fan-out and
	// socket (batch.go; IOP_UDP_BATCH=off).
	NoUDPBatch bool
	// Logger receives what the media plane has to say (never names); nil
	// discards it.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration iopd starts from.
func DefaultConfig() Config {
	return Config{
		UDPAddr:                 ":50000",
		KeyframeInterval:        500 * time.Millisecond,
		KeyframeRetryMax:        4 * time.Second,
		KeyframeWaitLog:         3 * time.Second,
		MaxTracksPerParticipant: 4,
		MaxCandidatesPerPC:      64,
		MaxOffersPerMinute:      30,
	}
}

// Stats counts what the media plane holds, for health, metrics and leak tests.
type Stats struct {
	Rooms           int
	Participants    int
	PeerConnections int64
	UpTracks        int64
	// PacketsIn counts RTP packets received from publishers since start.
	PacketsIn uint64
	// PacketsShed counts incoming packets dropped since start because a
	// queue in front of the track readers was full (see backlog.go): the
	// node could not keep up.
	PacketsShed uint64
	// ByTransport counts the connected participants by how their media
	// travels (udp, tcp, relay).
	ByTransport map[Transport]int
	// KeyframeRequests counts the keyframe requests sent to publishers
	// since start (one per track and request, whatever its layers).
	KeyframeRequests uint64
	// KeyframeWaits are the subscribers' video tracks waiting for a
	// keyframe now.
	KeyframeWaits KeyframeWaits
	// Refused counts what the per-participant limits refused since start.
	Refused Refusals
	// SendBatches counts the sendmmsg calls that sent fan-outs' copies
	// since start, BatchedDatagrams the datagrams they carried (batch.go);
	// both stay 0 with NoUDPBatch.
	SendBatches, BatchedDatagrams uint64
}

// Refusals counts the messages the media plane's limits refused.
type Refusals struct {
	Tracks     uint64 // publish offers with more tracks than MaxTracksPerParticipant
	Candidates uint64 // candidates beyond MaxCandidatesPerPC
	Offers     uint64 // publish offers beyond MaxOffersPerMinute
	Streams    uint64 // publishers cut off for opening too many media streams (push.go)
}

// SFU owns the pion API, the UDP port and the media rooms.
type SFU struct {
	cfg     Config
	pubs    *stack // publish PeerConnections: one API each (push.go)
	subs    *stack // subscribe PeerConnections: one API each (feedback.go)
	mux     ice.UDPMux
	udpAddr []net.Addr
	tcpMux  ice.TCPMux // nil without ICE over TCP
	tcpAddr net.Addr

	// Connectivity probes (probe.go): a stack per transport, the slots
	// that bound how many run at once, and how many run now.
	probes     map[Transport]*webrtc.API
	probeSlots chan struct{}
	probing    atomic.Int64

	mu    sync.Mutex
	rooms map[string]*Room

	openPCs  atomic.Int64
	upTracks atomic.Int64
	// packetsDone counts the packets received on tracks that have ended;
	// live tracks count their own.
	packetsDone atomic.Uint64
	// shed counts packets dropped by the bounded queues in backlog.go.
	shed *shedMeter
	// arrived times incoming RTP packets for the readers' staleness check.
	arrived *arrivals
	// clock sends every PeerConnection's periodic RTCP (rtcpclock.go).
	clock *rtcpClock
	// batch sends each fan-out's copies with one sendmmsg per socket
	// (batch.go); nil with Config.NoUDPBatch.
	batch *sendBatcher
	// keyframeRequests counts the PLIs sent (keyframe.go).
	keyframeRequests atomic.Uint64
	// refused* count the limits' refusals.
	refusedTracks, refusedCandidates, refusedOffers, refusedStreams atomic.Uint64
}

// logger returns the configured logger, or one that discards.
func (s *SFU) logger() *slog.Logger {
	if s.cfg.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.cfg.Logger
}

// New opens the media UDP port and prepares the WebRTC stack.
func New(cfg Config) (*SFU, error) {
	def := DefaultConfig()
	if cfg.KeyframeInterval <= 0 {
		cfg.KeyframeInterval = def.KeyframeInterval
	}
	if cfg.KeyframeRetryMax <= 0 {
		cfg.KeyframeRetryMax = def.KeyframeRetryMax
	}
	if cfg.KeyframeWaitLog <= 0 {
		cfg.KeyframeWaitLog = def.KeyframeWaitLog
	}
	if cfg.MaxTracksPerParticipant <= 0 {
		cfg.MaxTracksPerParticipant = def.MaxTracksPerParticipant
	}
	if cfg.MaxCandidatesPerPC <= 0 {
		cfg.MaxCandidatesPerPC = def.MaxCandidatesPerPC
	}
	if cfg.MaxOffersPerMinute <= 0 {
		cfg.MaxOffersPerMinute = def.MaxOffersPerMinute
	}
	shed := new(shedMeter)
	q := newBacklog(muxQueuePackets, shed)
	at := newArrivals()
	var out *sendBatcher
	if !cfg.NoUDPBatch {
		out = newSendBatcher()
	}
	mux, addrs, err := listenUDP(cfg, q, at, out)
	if err != nil {
		return nil, err
	}
	tcpMux, tcpAddr, err := listenTCP(cfg)
	if err != nil {
		_ = mux.Close()
		return nil, err
	}
	s := &SFU{cfg: cfg, mux: mux, udpAddr: addrs, tcpMux: tcpMux, tcpAddr: tcpAddr, rooms: map[string]*Room{}, shed: shed, arrived: at, batch: out,
		probeSlots: make(chan struct{}, maxProbes), clock: startClock()}
	counted := countedMux{UDPMux: mux, q: q}
	var pubs *stack
	if pubs, err = newStack(cfg, counted, tcpMux, shed, s.clock, true); err == nil {
		s.pubs = pubs
		s.subs, err = newStack(cfg, counted, tcpMux, shed, s.clock, false)
	}
	if err == nil {
		s.probes, err = probeAPIs(cfg, counted, tcpMux)
	}
	if err != nil {
		s.clock.stop()
		_ = s.closeMuxes()
		return nil, err
	}
	return s, nil
}

// listenUDP opens the media port. The socket's receive buffer stays at the
// kernel's default (net.core.rmem_default, 208 KiB on common kernels, about
// 90 full-size packets as the kernel counts them): it is the one queue that
// drops for free, before any CPU is spent on a packet, and its reader, the
// mux's, takes a packet off it in a few microseconds, so it overflows only
// when that reader is starved. A larger buffer would absorb longer stalls at
// the price of delay under overload: 4 MB holds 200-400 ms of what three
// groups of 15 send.
//
// Every socket it opens batches its writes through out (nil: batching
// off), one socket per interface when the host is unspecified.
func listenUDP(cfg Config, q *backlog, at *arrivals, out *sendBatcher) (ice.UDPMux, []net.Addr, error) {
	host, portStr, err := net.SplitHostPort(cfg.UDPAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("media UDP address %q: %w", cfg.UDPAddr, err)
	}
	port, err := net.LookupPort("udp", portStr)
	if err != nil {
		return nil, nil, fmt.Errorf("media UDP port %q: %w", portStr, err)
	}
	quiet := logging.NewDefaultLoggerFactory()
	quiet.DefaultLogLevel = logging.LogLevelError
	ip := net.ParseIP(host)
	if host != "" && ip == nil {
		return nil, nil, fmt.Errorf("media UDP address %q: host must be an IP address", cfg.UDPAddr)
	}
	if ip != nil && !ip.IsUnspecified() {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
		if err != nil {
			return nil, nil, fmt.Errorf("listen on media UDP port: %w", err)
		}
		sock := newCountedSocket(conn, q, at, out)
		mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: sock, Logger: quiet.NewLogger("ice")})
		return mux, []net.Addr{conn.LocalAddr()}, nil
	}
	std, err := stdnet.NewNet()
	if err != nil {
		return nil, nil, fmt.Errorf("media UDP port: %w", err)
	}
	opts := []ice.UDPMuxFromPortOption{
		ice.UDPMuxFromPortWithNetworks(ice.NetworkTypeUDP4),
		ice.UDPMuxFromPortWithLogger(quiet.NewLogger("ice")),
		ice.UDPMuxFromPortWithNet(countedNet{Net: std, q: q, at: at, out: out}),
	}
	if cfg.IncludeLoopback {
		opts = append(opts, ice.UDPMuxFromPortWithLoopback())
	}
	mux, err := ice.NewMultiUDPMuxFromPort(port, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on media UDP port %d: %w", port, err)
	}
	return mux, mux.GetListenAddresses(), nil
}

// Codecs the SFU accepts from publishers and offers to subscribers. One video
// and one audio codec that every current browser sends keeps fan-out free of
// transcoding.
var (
	codecVP8 = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
			RTCPFeedback: []webrtc.RTCPFeedback{
				{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"},
				{Type: "nack"}, {Type: "nack", Parameter: "pli"},
			},
		},
		PayloadType: 96,
	}
	codecOpus = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1",
		},
		PayloadType: 111,
	}
)

// stack is the WebRTC stack of one side: publish PeerConnections, which
// receive, or subscribe PeerConnections, which send.
type stack struct {
	me   *webrtc.MediaEngine
	ir   *interceptor.Registry
	se   webrtc.SettingEngine
	shed *shedMeter
}

// api returns a pion API on the stack. rtcp, when set, takes the place of
// the buffer of every incoming RTCP stream (feedback.go); media streams keep
// the bounded queues of backlog.go, kept in pushed when it is set (push.go).
// pion copies the media engine for each PeerConnection and builds its
// interceptors from the registry, so an API per PeerConnection costs only
// this struct.
func (k *stack) api(rtcp func(ssrc uint32) io.ReadWriteCloser, pushed *pushStreams) *webrtc.API {
	se := k.se
	queue := newMediaQueue(k.shed, pushed)
	se.BufferFactory = queue
	if rtcp != nil {
		se.BufferFactory = func(kind packetio.BufferPacketType, ssrc uint32) io.ReadWriteCloser {
			if kind == packetio.RTCPBufferPacket {
				return rtcp(ssrc)
			}
			return queue(kind, ssrc)
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(k.me), webrtc.WithInterceptorRegistry(k.ir), webrtc.WithSettingEngine(se))
}

// newStack builds the WebRTC stack of one side. Each side has only the
// interceptors it uses, none of which runs a goroutine of its own (their
// periodic RTCP goes out on the node's clock, rtcpclock.go):
// publish PeerConnections receive (NACKs to the publisher, receiver reports,
// congestion control feedback), subscribe PeerConnections send (sender
// reports, which browsers need to keep audio and video in sync).
func newStack(cfg Config, mux ice.UDPMux, tcpMux ice.TCPMux, shed *shedMeter, clock *rtcpClock, publish bool) (*stack, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(codecVP8, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("register VP8: %w", err)
	}
	if err := me.RegisterCodec(codecOpus, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("register Opus: %w", err)
	}
	// Simulcast publishers name their layers with these (RFC 8852).
	for _, uri := range []string{sdp.SDESMidURI, sdp.SDESRTPStreamIDURI, sdp.SDESRepairRTPStreamIDURI} {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, fmt.Errorf("register %s: %w", uri, err)
		}
	}
	ir := &interceptor.Registry{}
	if publish {
		// NACKs and receiver reports toward publishers are sent by the
		// node's clock (received.go), not by pion's generator and
		// receiver-report interceptors, which run a goroutine each per
		// PeerConnection. NACKs from subscribers are answered by the SFU
		// from one cache per published track (sfu/cache.go), not by pion's
		// responder, which copies every packet sent to every subscriber.
		// NACKs go out through the gate added before, which holds them
		// back while the node sheds load (backlog.go).
		ir.Add(&nackGate{shed: shed})
		ir.Add(clockedFactory{clock: clock, make: newReceivedStreams})
		// Publishers' browsers size their upload (and how many simulcast
		// layers they send) from transport-wide congestion control
		// feedback, which the publish side generates for what it
		// receives. Without it Chrome raises its rate by loss reports
		// alone and takes about 20 s to send all three layers. Subscribe
		// PeerConnections do not offer it: their browsers then report a
		// receive-side estimate (REMB), which chooses the layers they get
		// (bwe.go).
		for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
			me.RegisterFeedback(webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC}, kind)
			if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, kind); err != nil {
				return nil, fmt.Errorf("configure transport-wide congestion control: %w", err)
			}
		}
		ir.Add(clockedFactory{clock: clock, make: newCongestionFeedback})
	} else {
		ir.Add(clockedFactory{clock: clock, make: newSenderReports})
	}

	se := webrtc.SettingEngine{}
	quiet := logging.NewDefaultLoggerFactory()
	quiet.DefaultLogLevel = logging.LogLevelError
	se.LoggerFactory = quiet
	se.SetICEUDPMux(mux)
	if tcpMux != nil {
		se.SetICETCPMux(tcpMux)
	}
	se.SetNetworkTypes(networkTypes(true, tcpMux != nil))
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	if len(cfg.PublicIPs) > 0 {
		err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        cfg.PublicIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		})
		if err != nil {
			return nil, fmt.Errorf("public IP rewrite: %w", err)
		}
	}
	return &stack{me: me, ir: ir, se: se, shed: shed}, nil
}

// LocalAddrs returns the addresses the media port listens on.
func (s *SFU) LocalAddrs() []net.Addr { return s.udpAddr }

// Room returns the media room with this id, creating it on first use.
func (s *SFU) Room(id string) *Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[id]
	if r == nil {
		r = &Room{sfu: s, id: id, parts: map[string]*Participant{}}
		s.rooms[id] = r
	}
	return r
}

// forget drops an empty room from the registry.
func (s *SFU) forget(r *Room) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.mu.Lock()
	empty := len(r.parts) == 0
	r.mu.Unlock()
	if empty && s.rooms[r.id] == r {
		delete(s.rooms, r.id)
	}
}

// Stats returns what the media plane currently holds.
func (s *SFU) Stats() Stats {
	s.mu.Lock()
	st := Stats{Rooms: len(s.rooms), PacketsIn: s.packetsDone.Load(), PacketsShed: s.shed.n.Load()}
	var parts []*Participant
	for _, r := range s.rooms {
		r.mu.Lock()
		st.Participants += len(r.parts)
		for _, p := range r.parts {
			parts = append(parts, p)
		}
		r.mu.Unlock()
	}
	s.mu.Unlock()
	now := time.Now()
	for _, p := range parts {
		for _, u := range p.upTracks() {
			st.PacketsIn += u.packets.Load()
			st.KeyframeWaits.add(u, now)
		}
	}
	st.ByTransport = map[Transport]int{}
	for _, p := range parts {
		if t := p.Transport(); t != "" {
			st.ByTransport[t]++
		}
	}
	st.KeyframeRequests = s.keyframeRequests.Load()
	st.PeerConnections = s.openPCs.Load()
	st.UpTracks = s.upTracks.Load()
	st.Refused = Refusals{Tracks: s.refusedTracks.Load(), Candidates: s.refusedCandidates.Load(), Offers: s.refusedOffers.Load(), Streams: s.refusedStreams.Load()}
	if s.batch != nil {
		st.SendBatches, st.BatchedDatagrams = s.batch.calls.Load(), s.batch.datagrams.Load()
	}
	return st
}

// Close stops every participant and releases the UDP port.
func (s *SFU) Close() error {
	s.mu.Lock()
	var parts []*Participant
	for _, r := range s.rooms {
		r.mu.Lock()
		for _, p := range r.parts {
			parts = append(parts, p)
		}
		r.mu.Unlock()
	}
	s.mu.Unlock()
	for _, p := range parts {
		p.Close()
	}
	s.clock.stop()
	return s.closeMuxes()
}

// closeMuxes releases the media ports.
func (s *SFU) closeMuxes() error {
	err := s.mux.Close()
	if s.tcpMux != nil {
		if terr := s.tcpMux.Close(); err == nil {
			err = terr
		}
	}
	return err
}

// ErrClosed is returned for operations on a participant that has left.
var ErrClosed = errors.New("sfu: participant closed")

// ErrDuplicate is returned when a participant id is already in the room.
var ErrDuplicate = errors.New("sfu: participant id already in room")
