package rooms

import (
	"context"
	"time"
)

// Seats is the seam between the domain and the nodes it runs on (package
// cluster implements it over Redis): a room's seats are counted across every
// node, and a room's media lives on one node.
type Seats interface {
	// Take gives a client or family member a seat in room ("program/room"),
	// or ErrRoomFull when seatCap of their role are taken across every
	// node. Therapists and staff take no seat. The returned release frees
	// it (call it exactly once).
	Take(ctx context.Context, room string, seatCap int, role Role, sub string) (release func(), err error)
	// Claim makes this node the home of room's media. When another node
	// holds it already, it returns that node's URL and no release.
	Claim(ctx context.Context, room string) (release func(), ownerURL string, err error)
	// Place records, across nodes, that person sub of program is now in
	// room ("program/room") on this node, as of at: a person is in one room
	// at a time, and the node of their previous room takes them out of it
	// (Manager.MoveOut there). The returned release forgets the place when
	// this connection leaves (call it exactly once).
	Place(ctx context.Context, program, sub, room string, at time.Time) (release func(), err error)
}
