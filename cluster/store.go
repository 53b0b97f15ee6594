// Package cluster is what several iopd nodes share in Redis: seat leases
// (a room's cap holds across nodes), room ownership (a room's media lives on
// one node; joins elsewhere are redirected there) and the node registry with
// its heartbeat. It implements rooms.Seats, the seam admission calls; the
// domain (package rooms) never imports it.
package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store is the cluster's side of Redis: seat leases, room claims and the
// node registry.
type Store struct {
	rdb redis.UniversalClient
}

// NewStore returns the cluster's store on the Redis client rdb (e.g.
// store.Store.Redis).
func NewStore(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb} }

// seatKey is the sorted set of a room's seats of one category (client,
// family): members are person ids, scores the lease expiry in Unix ms. room
// is the room's "program/room" (rooms.Ref), so programs never share a key.
func seatKey(room, category string) string { return "iop:room:{" + room + "}:seats:" + category }

// ownerKey holds "nodeID url" of the node a room's media lives on.
func ownerKey(room string) string { return "iop:room:{" + room + "}:owner" }

// takeSeat drops expired leases, then grants or renews the person's seat if
// they hold one already or the room has fewer than cap: check and grant in
// one step, so racing joins on several nodes never overfill a room.
var takeSeat = redis.NewScript(`
local key, member = KEYS[1], ARGV[1]
local now, expiry, cap, keep = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZSCORE', key, member) == false and redis.call('ZCARD', key) >= cap then
  return 0
end
redis.call('ZADD', key, expiry, member)
redis.call('PEXPIRE', key, keep)
return 1
`)

// renewSeat extends a lease the person still holds; a lease that expired
// meanwhile is taken again only if there is room.
var renewSeat = redis.NewScript(`
local key, member = KEYS[1], ARGV[1]
local now, expiry, cap, keep = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('ZSCORE', key, member) == false then
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= cap then return 0 end
end
redis.call('ZADD', key, expiry, member)
redis.call('PEXPIRE', key, keep)
return 1
`)

// SeatRef names one seat lease.
type SeatRef struct {
	Room, Category, Person string
	Cap                    int
}

// TakeSeat grants person a seat of category in room for ttl if fewer than
// cap are taken (a person who holds one already keeps it). It reports false
// when the room is full.
func (s *Store) TakeSeat(ctx context.Context, ref SeatRef, ttl time.Duration) (bool, error) {
	return s.runSeat(ctx, takeSeat, ref, ttl)
}

// RenewSeats extends leases in one round trip: a node renews every lease
// it holds each few seconds, and one round trip per person would outlast
// the lease itself on a busy node (a reconnect storm of 100 people lost
// their seats that way). ok[i] is false when refs[i] had expired and its
// room filled up meanwhile, or could not be renewed (the first such error
// is returned).
func (s *Store) RenewSeats(ctx context.Context, refs []SeatRef, ttl time.Duration) (ok []bool, err error) {
	if len(refs) == 0 {
		return nil, nil
	}
	if err := renewSeat.Load(ctx, s.rdb).Err(); err != nil {
		return make([]bool, len(refs)), fmt.Errorf("renew seats: %w", err)
	}
	now := time.Now()
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(refs))
	for i, ref := range refs {
		cmds[i] = renewSeat.EvalSha(ctx, pipe, []string{seatKey(ref.Room, ref.Category)},
			ref.Person, now.UnixMilli(), now.Add(ttl).UnixMilli(), ref.Cap, (2 * ttl).Milliseconds())
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	ok = make([]bool, len(refs))
	for i, c := range cmds {
		n, cerr := c.Int()
		if cerr != nil {
			if err == nil {
				err = fmt.Errorf("renew seat in %s: %w", refs[i].Room, cerr)
			}
			continue
		}
		ok[i] = n == 1
	}
	return ok, err
}

func (s *Store) runSeat(ctx context.Context, script *redis.Script, ref SeatRef, ttl time.Duration) (bool, error) {
	now := time.Now()
	n, err := script.Run(ctx, s.rdb, []string{seatKey(ref.Room, ref.Category)},
		ref.Person, now.UnixMilli(), now.Add(ttl).UnixMilli(), ref.Cap, (2 * ttl).Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("seat in %s: %w", ref.Room, err)
	}
	return n == 1, nil
}

// ReleaseSeat frees a seat at once (leave, removal, denial).
func (s *Store) ReleaseSeat(ctx context.Context, ref SeatRef) error {
	if err := s.rdb.ZRem(ctx, seatKey(ref.Room, ref.Category), ref.Person).Err(); err != nil {
		return fmt.Errorf("release seat in %s: %w", ref.Room, err)
	}
	return nil
}

// Seated returns the people holding an unexpired seat of category in room.
func (s *Store) Seated(ctx context.Context, room, category string) ([]string, error) {
	now := fmt.Sprint(time.Now().UnixMilli())
	out, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: seatKey(room, category), ByScore: true, Start: "(" + now, Stop: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("seats in %s: %w", room, err)
	}
	return out, nil
}

// claimRoom makes this node the room's owner if nobody is, or renews the
// claim if it is already; otherwise it returns the owner's value. A claim
// under this node's id (ARGV[3]) or at its URL (ARGV[4]) is this node's
// own from before a restart (a crash leaves its claims until they lapse):
// taken over, so that the restarted node never redirects a join to itself.
var claimRoom = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
local mine = cur == false or cur == ARGV[1]
if not mine then
  local sp = string.find(cur, ' ', 1, true)
  if sp ~= nil and (string.sub(cur, 1, sp - 1) == ARGV[3] or string.sub(cur, sp + 1) == ARGV[4]) then
    mine = true
  end
end
if mine then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ''
end
return cur
`)

// releaseRoom deletes the claim only if this node holds it.
var releaseRoom = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// ClaimRoom makes the node the room's owner for ttl, or renews its claim,
// or takes over a claim its previous run left (same node id or same URL).
// When another node owns the room it returns false and that node's URL.
func (s *Store) ClaimRoom(ctx context.Context, room, nodeID, url string, ttl time.Duration) (mine bool, ownerURL string, err error) {
	cur, err := claimRoom.Run(ctx, s.rdb, []string{ownerKey(room)}, nodeID+" "+url, ttl.Milliseconds(), nodeID, url).Text()
	if err != nil {
		return false, "", fmt.Errorf("claim room %s: %w", room, err)
	}
	if cur == "" {
		return true, url, nil
	}
	_, owner, _ := strings.Cut(cur, " ")
	return false, owner, nil
}

// ReleaseRoom gives up the node's claim on a room it no longer serves.
func (s *Store) ReleaseRoom(ctx context.Context, room, nodeID, url string) error {
	if err := releaseRoom.Run(ctx, s.rdb, []string{ownerKey(room)}, nodeID+" "+url).Err(); err != nil {
		return fmt.Errorf("release room %s: %w", room, err)
	}
	return nil
}
