package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// placeKey holds where a person of a program is: "node room" of the room
// they last joined, with a lease the node renews while they are there.
func placeKey(program, sub string) string { return "iop:place:{" + program + "}:" + sub }

// movesChannel carries Move messages to node.
func movesChannel(node string) string { return "iop:moves:" + node }

// Place is where a person is: a node and a room ("program/room").
type Place struct{ Node, Room string }

func (p Place) value() string { return p.Node + " " + p.Room }

func parsePlace(v string) Place {
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' {
			return Place{Node: v[:i], Room: v[i+1:]}
		}
	}
	return Place{}
}

// SwapPlace records that person sub of program is now at p, for ttl, and
// returns where they were before (the zero Place if nowhere, or their lease
// lapsed).
func (s *Store) SwapPlace(ctx context.Context, program, sub string, p Place, ttl time.Duration) (Place, error) {
	old, err := s.rdb.SetArgs(ctx, placeKey(program, sub), p.value(), redis.SetArgs{TTL: ttl, Get: true}).Result()
	if errors.Is(err, redis.Nil) {
		return Place{}, nil
	}
	if err != nil {
		return Place{}, fmt.Errorf("record where a person is: %w", err)
	}
	return parsePlace(old), nil
}

// renewPlace extends a place only if the person is still there.
var renewPlace = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releasePlace forgets a place only if the person is still there.
var releasePlace = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// RenewPlace extends person's lease on p for ttl; false when they have
// moved on (or the lease lapsed).
func (s *Store) RenewPlace(ctx context.Context, program, sub string, p Place, ttl time.Duration) (bool, error) {
	n, err := renewPlace.Run(ctx, s.rdb, []string{placeKey(program, sub)}, p.value(), ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("renew where a person is: %w", err)
	}
	return n == 1, nil
}

// ReleasePlace forgets that the person is at p, unless they have moved on.
func (s *Store) ReleasePlace(ctx context.Context, program, sub string, p Place) error {
	if err := releasePlace.Run(ctx, s.rdb, []string{placeKey(program, sub)}, p.value()).Err(); err != nil {
		return fmt.Errorf("release where a person is: %w", err)
	}
	return nil
}

// Move tells a node that a person it holds joined another room.
type Move struct {
	Program string    `json:"program"`
	Sub     string    `json:"sub"`
	Room    string    `json:"room"` // the room they joined ("program/room"): they stay there
	At      time.Time `json:"at"`   // when
}

// PublishMove sends m to node.
func (s *Store) PublishMove(ctx context.Context, node string, m Move) error {
	b, _ := json.Marshal(m)
	if err := s.rdb.Publish(ctx, movesChannel(node), b).Err(); err != nil {
		return fmt.Errorf("tell node %s of a move: %w", node, err)
	}
	return nil
}

// SubscribeMoves delivers the moves sent to node until ctx ends. The
// subscription is in place when it returns (it waits up to 5 s for Redis
// to confirm it).
func (s *Store) SubscribeMoves(ctx context.Context, node string, deliver func(Move)) error {
	ps := s.rdb.Subscribe(ctx, movesChannel(node))
	if _, err := ps.ReceiveTimeout(ctx, 5*time.Second); err != nil {
		_ = ps.Close()
		return fmt.Errorf("subscribe to moves: %w", err)
	}
	go func() {
		defer ps.Close()
		ch := ps.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case msg, ok := <-ch:
				if !ok {
					return
				}
				var m Move
				if json.Unmarshal([]byte(msg.Payload), &m) == nil && m.Sub != "" {
					deliver(m)
				}
			}
		}
	}()
	return nil
}
