package cluster

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"iop/rooms"
)

// Seats implements rooms.Seats for admission.
var _ rooms.Seats = (*Seats)(nil)

// Seats holds this node's seat leases and room claims in Redis and renews
// them while their people are connected. A node that dies stops renewing:
// its seats and rooms come free when the leases expire.
type Seats struct {
	store *Store
	node  string
	url   string
	ttl   time.Duration
	log   *slog.Logger

	claimMu sync.Mutex // serializes claims with their releases
	mu      sync.Mutex
	lost    func(room, ownerURL string)
	leases  map[SeatRef]int    // local holders of each lease
	owned   map[string]int     // local holders of each room claim
	places  map[placeRef]int   // local connections of each person in each room
	cancel  context.CancelFunc // ends the moves subscription

	stop chan struct{}
	done chan struct{}
}

// DefaultLeaseTTL is how long a seat or room claim outlives a dead node.
const DefaultLeaseTTL = 15 * time.Second

// NewSeats starts renewing leases for node (reachable at url) every ttl/3.
func NewSeats(st *Store, node, url string, ttl time.Duration, log *slog.Logger) *Seats {
	s := &Seats{
		store: st, node: node, url: url, ttl: ttl, log: log,
		leases: map[SeatRef]int{}, owned: map[string]int{}, places: map[placeRef]int{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go s.renewLoop()
	return s
}

// Take gives a client or family member a seat in room, or ErrRoomFull when
// seatCap of their role are taken across every node. Therapists and staff
// take no seat. The returned release frees it (call it exactly once).
func (s *Seats) Take(ctx context.Context, room string, seatCap int, role rooms.Role, sub string) (release func(), err error) {
	if role.Staff() {
		return func() {}, nil
	}
	ref := SeatRef{Room: room, Category: string(role), Person: sub, Cap: seatCap}
	ok, err := s.store.TakeSeat(ctx, ref, s.ttl)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, rooms.ErrRoomFull
	}
	return hold(s, s.leases, ref, "releasing a seat", func(ctx context.Context) error {
		return s.store.ReleaseSeat(ctx, ref)
	}), nil
}

// hold counts one more local holder of key in held and returns its release:
// the last release frees the key in Redis (free). Leases and places are
// per node, and several connections of a person on it may share one.
func hold[K comparable](s *Seats, held map[K]int, key K, what string, free func(context.Context) error) func() {
	s.mu.Lock()
	held[key]++
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		held[key]--
		last := held[key] == 0
		if last {
			delete(held, key)
		}
		s.mu.Unlock()
		if !last {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := free(ctx); err != nil {
			s.log.Warn(what, "err", err)
		}
	}
}

// placeRef is a person in a room of this node.
type placeRef struct{ program, sub, room string }

// Place records, across nodes, that person sub of program is now in room
// on this node: a person is in one room at a time. When they were in
// another room on another node, that node is told (WhenMoved there) and
// takes them out as of at; rooms of this node are the caller's
// (Manager.MoveOut). The returned release forgets the place when this
// connection leaves (call it exactly once).
func (s *Seats) Place(ctx context.Context, program, sub, room string, at time.Time) (release func(), err error) {
	here := Place{Node: s.node, Room: room}
	old, err := s.store.SwapPlace(ctx, program, sub, here, s.ttl)
	if err != nil {
		return nil, err
	}
	if old.Node != "" && old.Node != s.node && old.Room != room {
		if err := s.store.PublishMove(ctx, old.Node, Move{Program: program, Sub: sub, Room: room, At: at}); err != nil {
			s.log.Warn("telling a node that a person moved", "err", err)
		}
	}
	return hold(s, s.places, placeRef{program, sub, room}, "releasing a person's place", func(ctx context.Context) error {
		return s.store.ReleasePlace(ctx, program, sub, here)
	}), nil
}

// WhenMoved sets what to do when a person this node holds joined another
// room on another node: take them out of this node's rooms but that one
// (Manager.MoveOut). It subscribes to the node's moves until Close.
func (s *Seats) WhenMoved(f func(program, sub string, keep rooms.Ref, at time.Time)) error {
	ctx, cancel := context.WithCancel(context.Background())
	err := s.store.SubscribeMoves(ctx, s.node, func(m Move) {
		ref, err := rooms.ParseRef(m.Room)
		if err != nil || ref.Program != m.Program {
			return
		}
		f(m.Program, m.Sub, ref, m.At)
	})
	if err != nil {
		cancel()
		return err
	}
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()
	return nil
}

// Claim makes this node the home of room's media. When another node already
// holds it, it returns that node's URL and no release. Claims and their
// releases are serialized on the node, so a release never deletes the
// claim a concurrent join has just relied on.
func (s *Seats) Claim(ctx context.Context, room string) (release func(), ownerURL string, err error) {
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	s.mu.Lock()
	held := s.owned[room] > 0
	s.mu.Unlock()
	if !held {
		mine, owner, err := s.store.ClaimRoom(ctx, room, s.node, s.url, s.ttl)
		if err != nil {
			return nil, "", err
		}
		if !mine {
			return nil, owner, nil
		}
	}
	s.mu.Lock()
	s.owned[room]++
	s.mu.Unlock()
	return func() { s.unclaim(room) }, "", nil
}

// unclaim drops one local holder of room's claim and gives the claim up
// with the last.
func (s *Seats) unclaim(room string) {
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	s.mu.Lock()
	s.owned[room]--
	last := s.owned[room] == 0
	if last {
		delete(s.owned, room)
	}
	s.mu.Unlock()
	if !last {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.store.ReleaseRoom(ctx, room, s.node, s.url); err != nil {
		s.log.Warn("releasing a room claim", "room", room, "err", err)
	}
}

func (s *Seats) renewLoop() {
	defer close(s.done)
	t := time.NewTicker(s.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.renew()
		}
	}
}

func (s *Seats) renew() {
	s.mu.Lock()
	leases := make([]SeatRef, 0, len(s.leases))
	for ref := range s.leases {
		leases = append(leases, ref)
	}
	rooms := make([]string, 0, len(s.owned))
	for room := range s.owned {
		rooms = append(rooms, room)
	}
	places := make([]placeRef, 0, len(s.places))
	for ref := range s.places {
		places = append(places, ref)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.ttl/3)
	defer cancel()
	kept, err := s.store.RenewSeats(ctx, leases, s.ttl)
	for i, ref := range leases {
		if !kept[i] {
			// Redis was away long enough for the lease to lapse and the
			// room filled meanwhile: the person stays, but says so.
			s.log.Warn("renewing a seat", "room", ref.Room, "err", err)
		}
	}
	for _, p := range places {
		// false: the person joined another room since, whose node holds
		// the place now (and told this one).
		if _, err := s.store.RenewPlace(ctx, p.program, p.sub, Place{Node: s.node, Room: p.room}, s.ttl); err != nil {
			s.log.Warn("renewing a person's place", "err", err)
		}
	}
	for _, room := range rooms {
		mine, owner, err := s.store.ClaimRoom(ctx, room, s.node, s.url, s.ttl)
		switch {
		case err != nil:
			s.log.Warn("renewing a room claim", "room", room, "err", err)
		case !mine:
			// Another node took the room while this one could not renew
			// (a long Redis outage): two halves of a group must not meet on
			// two nodes, so this node's half moves there.
			s.log.Warn("room claimed by another node; moving its participants there", "room", room)
			s.mu.Lock()
			lost := s.lost
			s.mu.Unlock()
			if lost != nil {
				lost(room, owner)
			}
		}
	}
}

// WhenLost sets what to do when another node has taken a room this node
// serves: move its participants to ownerURL.
func (s *Seats) WhenLost(f func(room, ownerURL string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lost = f
}

// Close stops renewing and listening for moves; leases still held expire
// by themselves.
func (s *Seats) Close() {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}
