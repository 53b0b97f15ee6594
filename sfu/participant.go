package sfu

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"
)

// ErrBadSDP is returned for a description or candidate the client should not
// have sent (unparsable, wrong state).
var ErrBadSDP = errors.New("sfu: bad session description")

// The per-participant limits' refusals (Config): the offer or candidate is
// not applied and the participant's media carries on as before.
var (
	ErrTooManyTracks     = errors.New("sfu: too many tracks in the publish offer")
	ErrTooManyCandidates = errors.New("sfu: too many ICE candidates for this PeerConnection")
	ErrTooManyOffers     = errors.New("sfu: too many publish offers per minute")
)

// Participant is one person's media: a publish PeerConnection that the client
// offers and a subscribe PeerConnection that the server offers.
type Participant struct {
	id   string
	room *Room
	sfu  *SFU
	sig  Signaler
	// group is who the participant sees and hears within the room (the
	// room's mu; group.go).
	group int

	pub, sub         *webrtc.PeerConnection
	pubGate, subGate gate
	tw               *transportWatch
	offers           *rate.Limiter // publish offers (MaxOffersPerMinute)

	mu            sync.Mutex
	closed        bool
	ups           []*upTrack
	downs         map[*upTrack]*downTrack
	offerInFlight bool                             // a subscribe offer awaits its answer
	renegotiate   bool                             // tracks changed while an offer was in flight
	offersSent    int                              // subscribe offers so far
	subUp         bool                             // the subscribe PC has connected once
	tracksSeen    int                              // publisher tracks ever accepted, for unique ids
	mutedKinds    map[string]bool                  // kinds not forwarded, for tracks still to come
	simulcast     map[*webrtc.RTPReceiver]*upTrack // layers arrive one by one
	est           estimate                         // this subscriber's bandwidth, shared among its videos (bwe.go)
	screenStream  string                           // the stream whose tracks are the screen share, or "" (screen.go)
	fb            feedback                         // the subscribe PC's RTCP, by down-track (feedback.go)
	pushed        pushStreams                      // the publish PC's incoming media, until read (push.go)

	// subReady is set once the subscribe PeerConnection has connected:
	// what is written to it before is lost (keyframe.go).
	subReady atomic.Bool
}

// ID returns the participant id; it is the MediaStream id of its tracks.
func (p *Participant) ID() string { return p.id }

func (p *Participant) openPCs() error {
	var err error
	p.pushed.limit = streamsPerTrack * p.sfu.cfg.MaxTracksPerParticipant
	p.pushed.over = p.tooManyStreams
	if p.pub, err = p.sfu.pubs.api(nil, &p.pushed).NewPeerConnection(webrtc.Configuration{}); err != nil {
		return fmt.Errorf("publish PeerConnection: %w", err)
	}
	p.sfu.openPCs.Add(1)
	if p.sub, err = p.sfu.subs.api(p.fb.sink, nil).NewPeerConnection(webrtc.Configuration{}); err != nil {
		p.closePCs()
		return fmt.Errorf("subscribe PeerConnection: %w", err)
	}
	p.sfu.openPCs.Add(1)

	p.tw.watch(Publish, p.pub)
	p.tw.watch(Subscribe, p.sub)
	p.pub.OnICECandidate(p.pubGate.localCandidate)
	p.sub.OnICECandidate(p.subGate.localCandidate)
	p.pub.OnConnectionStateChange(func(s webrtc.PeerConnectionState) { p.stateChanged(Publish, s) })
	p.sub.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			p.subConnected()
		}
		p.stateChanged(Subscribe, s)
	})
	p.pub.OnTrack(p.onTrack)
	return nil
}

func (p *Participant) closePCs() {
	for _, pc := range []*webrtc.PeerConnection{p.pub, p.sub} {
		if pc != nil {
			_ = pc.Close()
			p.sfu.openPCs.Add(-1)
		}
	}
}

func (p *Participant) stateChanged(pc PC, s webrtc.PeerConnectionState) {
	if s != webrtc.PeerConnectionStateFailed {
		return
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if !closed {
		p.sig.MediaFailed(pc)
	}
}

// streamsPerTrack is how many incoming media streams a publish
// PeerConnection may hold open per track it may publish: a browser's three
// simulcast layers, and as many again for streams pion opened for packets
// it could not place (it keeps them until the PeerConnection closes).
const streamsPerTrack = 2 * maxLayers

// tooManyStreams cuts off a publisher whose PeerConnection opened more
// media streams than its tracks can account for (push.go): the session
// ends as when the PeerConnection fails.
func (p *Participant) tooManyStreams() {
	p.sfu.refusedStreams.Add(1)
	p.sfu.logger().Warn("publisher opened more media streams than its tracks allow; dropping it",
		"participant", p.id, "limit", p.pushed.limit)
	p.stateChanged(Publish, webrtc.PeerConnectionStateFailed)
}

// HandleOffer applies the client's offer on the publish PeerConnection and
// sends the answer through the Signaler.
// An offer that sends more tracks than MaxTracksPerParticipant, or one
// over MaxOffersPerMinute, is refused without being applied.
func (p *Participant) HandleOffer(sdp string) error {
	limit := p.sfu.cfg.MaxTracksPerParticipant
	if n := strings.Count(sdp, "\nm="); n > 2*limit {
		p.sfu.refusedTracks.Add(1)
		return fmt.Errorf("%w: %d media sections, at most %d", ErrTooManyTracks, n, 2*limit)
	}
	if n := sendingSections(sdp); n > limit {
		p.sfu.refusedTracks.Add(1)
		return fmt.Errorf("%w: %d tracks, at most %d", ErrTooManyTracks, n, limit)
	}
	if p.isClosed() {
		return ErrClosed
	}
	if !p.offers.Allow() {
		p.sfu.refusedOffers.Add(1)
		return fmt.Errorf("%w: at most %d", ErrTooManyOffers, p.sfu.cfg.MaxOffersPerMinute)
	}
	offer := webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: withoutRepairStreams(sdp)}
	if err := p.pub.SetRemoteDescription(offer); err != nil {
		return fmt.Errorf("%w: publish offer: %v", ErrBadSDP, err)
	}
	answer, err := p.pub.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("%w: publish answer: %v", ErrBadSDP, err)
	}
	if err := p.pub.SetLocalDescription(answer); err != nil {
		return fmt.Errorf("%w: publish answer: %v", ErrBadSDP, err)
	}
	p.pubGate.sendDescription(*p.pub.LocalDescription())
	return p.pubGate.remoteDescriptionSet(p.pub)
}

// HandleAnswer applies the client's answer to the server's subscribe offer,
// then sends the next offer if tracks changed meanwhile.
func (p *Participant) HandleAnswer(sdp string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if !p.offerInFlight {
		return fmt.Errorf("%w: no subscribe offer awaits an answer", ErrBadSDP)
	}
	answer := webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: withoutRepairStreams(sdp)}
	if err := p.sub.SetRemoteDescription(answer); err != nil {
		return fmt.Errorf("%w: subscribe answer: %v", ErrBadSDP, err)
	}
	p.offerInFlight = false
	err := p.subGate.remoteDescriptionSet(p.sub)
	if p.renegotiate {
		p.negotiateLocked()
	}
	return err
}

// AddCandidate adds a trickled remote candidate; nil marks the end of the
// client's gathering. Candidates that arrive before their PeerConnection's
// remote description are held until it is set.
func (p *Participant) AddCandidate(pc PC, c *webrtc.ICECandidateInit) error {
	if c == nil || c.Candidate == "" {
		return nil
	}
	p.tw.remoteCandidate(*c)
	switch pc {
	case Publish:
		return p.pubGate.addRemote(p.pub, *c)
	case Subscribe:
		return p.subGate.addRemote(p.sub, *c)
	}
	return fmt.Errorf("%w: unknown PeerConnection %q", ErrBadSDP, pc)
}

// SetForwarding starts or stops forwarding the participant's published
// tracks of a kind ("audio" or "video") to everyone else: a therapist's mute
// takes effect here, whatever the client sends. Resumed video starts with a
// fresh keyframe.
func (p *Participant) SetForwarding(kind string, on bool) {
	for _, u := range p.upTracks() {
		if u.kind.String() != kind || u.screen {
			continue // a screen share is stopped, not muted (SetScreen)
		}
		if was := u.muted.Swap(!on); was && on {
			u.requestAllKeyframes()
		}
	}
	p.mu.Lock()
	if on {
		delete(p.mutedKinds, kind)
	} else {
		p.mutedKinds[kind] = true
	}
	p.mu.Unlock()
}

// Close leaves the room: the participant's tracks leave everyone's subscribe
// PeerConnection, its own subscriptions end and both PeerConnections close.
// It is safe to call more than once.
func (p *Participant) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	ups := p.ups
	p.ups = nil
	downs := p.downs
	p.downs = map[*upTrack]*downTrack{}
	p.mu.Unlock()

	for _, u := range ups {
		u.close()
	}
	others := p.room.leave(p)
	for _, o := range others {
		for _, u := range ups {
			o.unsubscribe(u)
		}
	}
	for u, d := range downs {
		u.detach(d)
	}
	p.closePCs()
	p.sfu.forget(p.room)
}

func (p *Participant) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// LastMedia returns when a media packet (padding aside) last arrived from
// p on any track, or the zero time if none has: the last evidence that the
// person was there, for attendance.
func (p *Participant) LastMedia() time.Time {
	var last int64
	for _, u := range p.upTracks() {
		for i := range u.layers {
			if l := u.layers[i].Load(); l != nil {
				last = max(last, l.lastAt.Load())
			}
		}
	}
	if last == 0 {
		return time.Time{}
	}
	return time.Unix(0, last)
}

// LastRTCP returns when an RTCP packet (a receiver report, a NACK, a
// keyframe request, a bandwidth estimate) last arrived from p's subscribe
// PeerConnection, or the zero time if none has: evidence that the person
// was there even while they send no media, for attendance.
func (p *Participant) LastRTCP() time.Time {
	if n := p.fb.heard.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Flow says what the server receives from p of one kind of media: last is
// when its latest media packet (padding aside) arrived on any track of
// that kind, since when that unbroken run of packets began (no pause of
// over a second); both are zero if none has arrived. It is the evidence of
// modality, for attendance.
func (p *Participant) Flow(kind webrtc.RTPCodecType) (since, last time.Time) {
	var s, l int64
	for _, u := range p.upTracks() {
		if u.kind != kind {
			continue
		}
		for i := range u.layers {
			x := u.layers[i].Load()
			if x == nil {
				continue
			}
			if at := x.lastAt.Load(); at > l {
				s, l = x.since.Load(), at
			}
		}
	}
	if l == 0 {
		return time.Time{}, time.Time{}
	}
	return time.Unix(0, s), time.Unix(0, l)
}

// upTracks returns the tracks p publishes.
func (p *Participant) upTracks() []*upTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*upTrack(nil), p.ups...)
}

// addUp records a new published track unless p is closed or at its limit.
func (p *Participant) addUp(u *upTrack) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.ups) >= p.sfu.cfg.MaxTracksPerParticipant {
		return false
	}
	p.ups = append(p.ups, u)
	return true
}

func (p *Participant) onTrack(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	index, simulcast := layerOf(remote.RID())
	p.mu.Lock()
	u := p.simulcast[receiver]
	fresh := u == nil
	if fresh {
		p.tracksSeen++
		screen := p.screenStream != "" && remote.StreamID() == p.screenStream
		id := fmt.Sprintf("%s-%d", remote.Kind(), p.tracksSeen)
		if screen {
			id = "screen-" + id
		}
		u = newUpTrack(p, id, remote.Kind(), remote.Codec().RTPCodecCapability, simulcast)
		u.screen, u.stream = screen, remote.StreamID()
		u.muted.Store(!screen && p.mutedKinds[remote.Kind().String()])
		if simulcast {
			p.simulcast[receiver] = u
			u.pause.mid = p.midOf(receiver)
		}
	}
	p.mu.Unlock()
	l, ok := u.addLayer(index, remote, uint32(remote.SSRC()))
	if !ok {
		return // a second stream with the same rid: ignored
	}
	if fresh && !p.room.addUpTrack(p, u) {
		return // over the limit or leaving: the track is read by nobody and dropped
	}
	if fresh {
		p.sfu.upTracks.Add(1)
	}
	end := func() {
		if last := l.stop(); last {
			p.sfu.upTracks.Add(-1)
			p.trackEnded(u)
			p.sfu.packetsDone.Add(u.packets.Load())
		}
	}
	l.start()
	if q := p.pushed.take(uint32(remote.SSRC())); q != nil {
		q.attach(l.readOne, end)
		return
	}
	go func() { // not a stream of ours (push.go): read it here
		for l.readOne() {
		}
		end()
	}()
}

// midOf returns the media section of the publish PeerConnection that
// receiver receives.
func (p *Participant) midOf(receiver *webrtc.RTPReceiver) string {
	for _, t := range p.pub.GetTransceivers() {
		if t.Receiver() == receiver {
			return t.Mid()
		}
	}
	return ""
}

// SetLayer records which simulcast layer ("low", "medium", "high") this
// participant wants of another's video; the switch happens on a keyframe.
func (p *Participant) SetLayer(publisher, quality string) error {
	want, ok := map[string]int{"low": layerLow, "medium": layerMedium, "high": layerHigh}[quality]
	if !ok {
		return fmt.Errorf("%w: quality %q", ErrBadSDP, quality)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for u, d := range p.downs {
		if u.pub.id == publisher && u.kind == webrtc.RTPCodecTypeVideo && !u.screen {
			d.setWant(want)
		}
	}
	return nil
}

// trackEnded removes a track whose publisher stopped sending it.
func (p *Participant) trackEnded(u *upTrack) {
	u.close()
	p.mu.Lock()
	for i, x := range p.ups {
		if x == u {
			p.ups = append(p.ups[:i], p.ups[i+1:]...)
			break
		}
	}
	p.mu.Unlock()
	for _, o := range p.room.participants() {
		if o != p {
			o.unsubscribe(u)
		}
	}
}

// subscribe adds u to p's subscribe PeerConnection and renegotiates.
func (p *Participant) subscribe(u *upTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.downs[u] != nil {
		return
	}
	d := newDownTrack(u)
	d.sub = p
	sender, err := p.sub.AddTrack(d)
	if err != nil {
		return
	}
	d.sender = sender
	if !u.attach(d) {
		_ = p.sub.RemoveTrack(sender)
		return
	}
	p.downs[u] = d
	p.negotiateLocked()
}

// unsubscribe removes u from p's subscribe PeerConnection and renegotiates.
func (p *Participant) unsubscribe(u *upTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.downs[u]
	if d == nil {
		return
	}
	delete(p.downs, u)
	u.detach(d)
	if p.closed {
		return
	}
	_ = p.sub.RemoveTrack(d.sender)
	p.negotiateLocked()
}

// subConnected sends the offer that waited for the subscribe PC to connect,
// and has every video it receives start on a keyframe now that one can
// arrive.
func (p *Participant) subConnected() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.subUp = true
	p.subReady.Store(true)
	for u := range p.downs {
		u.kick()
	}
	if p.renegotiate {
		p.negotiateLocked()
	}
}

// negotiateLocked sends a subscribe offer, or marks that one is due: once the
// answer to the offer in flight arrives, and after the first offer, once the
// subscribe PC has connected. Offers are never interleaved, and a second offer
// never races the client's start of ICE for the first (a client that applies
// it too early can restart ICE with credentials the server never sees).
func (p *Participant) negotiateLocked() {
	if p.closed {
		return
	}
	if p.offerInFlight || (p.offersSent > 0 && !p.subUp) {
		p.renegotiate = true
		return
	}
	p.renegotiate = false
	offer, err := p.sub.CreateOffer(nil)
	if err == nil {
		err = p.sub.SetLocalDescription(offer)
	}
	if err != nil {
		p.sig.MediaFailed(Subscribe)
		return
	}
	p.offerInFlight = true
	p.offersSent++
	p.subGate.sendDescription(*p.sub.LocalDescription())
}

// writeRTCP sends feedback (keyframe requests) to the publisher.
func (p *Participant) writeRTCP(pkts []rtcp.Packet) {
	_ = p.pub.WriteRTCP(pkts)
}

// sendingSections counts the audio and video sections of an offer that
// send media: not rejected (port 0) and not recvonly or inactive. An
// unparsable offer counts 0 here and is refused when applied.
func sendingSections(offer string) int {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		return 0
	}
	n := 0
	for _, m := range d.MediaDescriptions {
		if k := m.MediaName.Media; k != "audio" && k != "video" || m.MediaName.Port.Value == 0 {
			continue
		}
		sending := true
		for _, a := range m.Attributes {
			if a.Key == "recvonly" || a.Key == "inactive" {
				sending = false
			}
		}
		if sending {
			n++
		}
	}
	return n
}
