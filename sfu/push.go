package sfu

import "sync"

// Forwarding a published packet on the goroutine that decrypts it.
//
// pion's SRTP session reads a publish PeerConnection's media on one
// goroutine, decrypts each packet and writes it to its stream's queue
// (mediaQueue, backlog.go). A goroutine per published layer used to take
// it from there and forward it: one hand-off per incoming packet, and one
// goroutine per layer. Once a layer has its track (OnTrack), its queue is
// pushed instead: right after each write, on the SRTP session's goroutine,
// the packet is read back through pion's track, so that the receive
// interceptors (NACKs, receiver reports, congestion control feedback) see
// it as before, and forwarded. Packets written before the reader attached
// (those pion looked at to announce the track) are read first, in order.
//
// The queue in front of forwarding is then pion's DTLS/SRTP demultiplexer's
// (1 MB per PeerConnection); the staleness check of backlog.go still skips
// what waited there longer than maxPacketAge.

// pushStreams holds the queues of one publish PeerConnection's incoming
// media streams, by SSRC, until their layers' readers take them.
//
// It also bounds them. pion keeps every stream a peer opens, with its SRTP
// state, until the PeerConnection closes, whether or not it is ever a
// track: a publisher who sent packets under ever new SSRCs (each
// authenticated, so only an admitted participant can) would grow the
// node's memory without end. A browser opens at most three streams (its
// simulcast layers) per track it publishes; more than limit open at once
// cuts the publisher off (over, once).
type pushStreams struct {
	limit int
	over  func()

	mu     sync.Mutex
	bySSRC map[uint32]*mediaQueue
	open   int
	cut    bool
}

// add keeps the queue of a new stream; false when the publisher has too
// many open, and the stream is refused.
func (s *pushStreams) add(ssrc uint32, q *mediaQueue) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limit > 0 && s.open >= s.limit {
		if !s.cut && s.over != nil {
			s.cut = true
			go s.over()
		}
		return false
	}
	if s.bySSRC == nil {
		s.bySSRC = map[uint32]*mediaQueue{}
	}
	s.open++
	s.bySSRC[ssrc] = q
	return true
}

// remove forgets a stream that closed.
func (s *pushStreams) remove(q *mediaQueue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open--
	if s.bySSRC[q.ssrc] == q {
		delete(s.bySSRC, q.ssrc)
	}
}

// take returns the queue of the stream with ssrc, or nil.
func (s *pushStreams) take(ssrc uint32) *mediaQueue {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.bySSRC[ssrc]
	delete(s.bySSRC, ssrc)
	return q
}

// attach makes readOne read every packet as it is written; end runs, on a
// goroutine of its own, once the stream has ended and its last packet was
// read. readOne must not block while the queue holds a packet: it reads
// through pion's track, which hands out the packets pion kept when it
// announced the track before those in the queue.
func (q *mediaQueue) attach(readOne func() bool, end func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.readOne, q.end = readOne, end
	q.drain()
}

// drain reads what the queue holds; the caller holds q.mu. Reading only
// while the queue holds a packet never blocks: pion's stream counts the
// packets it was given, and its track returns any it kept first.
func (q *mediaQueue) drain() {
	for q.Buffer.Count() > 0 {
		if !q.readOne() {
			q.finish()
			return
		}
	}
}

// finish detaches the reader and ends it; the caller holds q.mu.
func (q *mediaQueue) finish() {
	if end := q.end; end != nil {
		go end()
	}
	q.readOne, q.end = nil, nil
}

// Close closes the queue. pion calls it under its stream's lock, which a
// read takes too, so the rest (the last packets, then the end) is read on
// a goroutine of its own; once closed, reads never block. Only the first
// Close counts.
func (q *mediaQueue) Close() error {
	err := q.Buffer.Close()
	if q.pushed != nil && q.closed.CompareAndSwap(false, true) {
		q.pushed.remove(q)
		go func() {
			q.mu.Lock()
			defer q.mu.Unlock()
			if q.readOne == nil {
				return
			}
			for q.readOne() {
			}
			q.finish()
		}()
	}
	return err
}
