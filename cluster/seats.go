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
	leases  map[SeatRef]int // local holders of each lease
	owned   map[string]int  // local holders of each room claim

	stop chan struct{}
	done chan struct{}
}

// DefaultLeaseTTL is how long a seat or room claim outlives a dead node.
const DefaultLeaseTTL = 15 * time.Second

// NewSeats starts renewing leases for node (reachable at url) every ttl/3.
func NewSeats(st *Store, node, url string, ttl time.Duration, log *slog.Logger) *Seats {
	s := &Seats{
		store: st, node: node, url: url, ttl: ttl, log: log,
		leases: map[SeatRef]int{}, owned: map[string]int{},
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
	s.mu.Lock()
	s.leases[ref]++
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.leases[ref]--
		last := s.leases[ref] == 0
		if last {
			delete(s.leases, ref)
		}
		s.mu.Unlock()
		if last {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.store.ReleaseSeat(ctx, ref); err != nil {
				s.log.Warn("releasing a seat", "room", room, "err", err)
			}
		}
	}, nil
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
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.ttl/3)
	defer cancel()
	for _, ref := range leases {
		if ok, err := s.store.RenewSeat(ctx, ref, s.ttl); err != nil || !ok {
			// Redis was away long enough for the lease to lapse and the
			// room filled meanwhile: the person stays, but says so.
			s.log.Warn("renewing a seat", "room", ref.Room, "kept", ok, "err", err)
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

// Close stops renewing; leases still held expire by themselves.
func (s *Seats) Close() {
	close(s.stop)
	<-s.done
}
