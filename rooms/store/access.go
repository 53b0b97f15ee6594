package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"iop/rooms"
)

// Access state: what a valid token alone does not decide. Single-use invite
// tokens (their jti consumed on first use), removals from one session, and
// program-wide blocks, shared by every node through Redis.

// DefaultRevocationTTL is how long a participant removed from a session is
// kept out of it when no other time is given: longer than any session.
const DefaultRevocationTTL = 24 * time.Hour

// minJTITTL is the shortest time a consumed jti is remembered, so that a
// token at the edge of its lifetime (or within leeway past it) is not
// accepted a second time.
const minJTITTL = time.Minute

// blockChannel is the pub/sub channel that carries every Block and Unblock
// of the Redis database db: pub/sub ignores database numbers, so deployments
// sharing one server in different databases must not hear each other.
func blockChannel(db int) string { return fmt.Sprintf("iop:blocks:%d", db) }

// keyPart escapes one component of a key name (rooms.KeyPart, the one
// escaper every store uses).
var keyPart = rooms.KeyPart

// jtiKey marks a single-use token's jti as consumed, in its program.
func jtiKey(program, jti string) string { return "iop:jti:" + keyPart(program) + ":" + keyPart(jti) }

// revokedKey marks sub as removed from room ("program/room", which carries
// the program); it expires.
func revokedKey(room, sub string) string {
	return "iop:revoked:" + keyPart(room) + ":" + keyPart(sub)
}

// blockedKey is the set of subs blocked in program.
func blockedKey(program string) string { return "iop:blocked:" + keyPart(program) }

// ConsumeJTI records that program's single-use token jti has been used and
// reports whether this was its first use: of concurrent uses on any node
// exactly one gets true. The record is kept until until (pass the token's
// exp plus the verifier's leeway), and at least a minute.
func (s *Store) ConsumeJTI(ctx context.Context, program, jti string, until time.Time) (first bool, err error) {
	if jti == "" || program == "" {
		return false, errors.New("consume jti: a single-use token needs a program and a jti")
	}
	ttl := time.Until(until)
	if ttl < minJTITTL {
		ttl = minJTITTL
	}
	first, err = s.Redis.SetNX(ctx, jtiKey(program, jti), time.Now().UTC().Format(time.RFC3339), ttl).Result()
	if err != nil {
		return false, fmt.Errorf("consume jti: %w", err)
	}
	return first, nil
}

// JTIUsed reports whether a single-use token's jti was consumed already.
func (s *Store) JTIUsed(ctx context.Context, program, jti string) (bool, error) {
	n, err := s.Redis.Exists(ctx, jtiKey(program, jti)).Result()
	if err != nil {
		return false, fmt.Errorf("check jti: %w", err)
	}
	return n > 0, nil
}

// ReturnJTI undoes ConsumeJTI for a join that was refused after it: the
// invitation was not used.
func (s *Store) ReturnJTI(ctx context.Context, program, jti string) error {
	if err := s.Redis.Del(ctx, jtiKey(program, jti)).Err(); err != nil {
		return fmt.Errorf("return jti: %w", err)
	}
	return nil
}

// RevokeFromRoom keeps sub out of room ("program/room") for ttl (DefaultRevocationTTL when
// ttl <= 0): a removed participant cannot rejoin that session, with the same
// token or a refreshed one.
func (s *Store) RevokeFromRoom(ctx context.Context, room, sub string, ttl time.Duration) error {
	if room == "" || sub == "" {
		return errors.New("revoke from room: room and sub are required")
	}
	if ttl <= 0 {
		ttl = DefaultRevocationTTL
	}
	if err := s.Redis.Set(ctx, revokedKey(room, sub), 1, ttl).Err(); err != nil {
		return fmt.Errorf("revoke from room: %w", err)
	}
	return nil
}

// RevokedFromRoom reports whether sub was removed from room and may not rejoin.
func (s *Store) RevokedFromRoom(ctx context.Context, room, sub string) (bool, error) {
	n, err := s.Redis.Exists(ctx, revokedKey(room, sub)).Result()
	if err != nil {
		return false, fmt.Errorf("check room revocation: %w", err)
	}
	return n > 0, nil
}

// BlockEvent tells nodes that a person was blocked or unblocked in a program.
type BlockEvent struct {
	Program string `json:"program"`
	Sub     string `json:"sub"`
	Blocked bool   `json:"blocked"`
}

// Block bars sub from every session of program until Unblock, and tells
// every node subscribed with SubscribeBlocks, so that live connections can
// be closed within seconds.
func (s *Store) Block(ctx context.Context, program, sub string) error {
	return s.setBlocked(ctx, BlockEvent{Program: program, Sub: sub, Blocked: true})
}

// Unblock lifts a Block and tells the subscribed nodes.
func (s *Store) Unblock(ctx context.Context, program, sub string) error {
	return s.setBlocked(ctx, BlockEvent{Program: program, Sub: sub, Blocked: false})
}

func (s *Store) setBlocked(ctx context.Context, e BlockEvent) error {
	verb := "unblock"
	if e.Blocked {
		verb = "block"
	}
	if e.Program == "" || e.Sub == "" {
		return fmt.Errorf("%s: program and sub are required", verb)
	}
	msg, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("%s: encode event: %w", verb, err)
	}
	_, err = s.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if e.Blocked {
			p.SAdd(ctx, blockedKey(e.Program), e.Sub)
		} else {
			p.SRem(ctx, blockedKey(e.Program), e.Sub)
		}
		p.Publish(ctx, blockChannel(s.Redis.Options().DB), msg)
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	return nil
}

// Blocked reports whether sub is blocked in program.
func (s *Store) Blocked(ctx context.Context, program, sub string) (bool, error) {
	ok, err := s.Redis.SIsMember(ctx, blockedKey(program), sub).Result()
	if err != nil {
		return false, fmt.Errorf("check block: %w", err)
	}
	return ok, nil
}

// BlockedIn returns the subs blocked in program, in no particular order.
func (s *Store) BlockedIn(ctx context.Context, program string) ([]string, error) {
	subs, err := s.Redis.SMembers(ctx, blockedKey(program)).Result()
	if err != nil {
		return nil, fmt.Errorf("list blocks: %w", err)
	}
	return subs, nil
}

// SubscribeBlocks delivers every later Block and Unblock of any node, in
// order, until stop is called or ctx ends; then the channel closes. The
// subscription is in place when it returns. Events published while the
// connection to Redis is down are lost (the client resubscribes by itself),
// so a node also checks Blocked when a person joins.
func (s *Store) SubscribeBlocks(ctx context.Context) (<-chan BlockEvent, func(), error) {
	ps := s.Redis.Subscribe(ctx, blockChannel(s.Redis.Options().DB))
	if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
		_ = ps.Close()
		return nil, nil, fmt.Errorf("subscribe to blocks: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan BlockEvent, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		defer ps.Close()
		in := ps.Channel()
		for {
			var m *redis.Message
			select {
			case <-ctx.Done():
				return
			case msg, ok := <-in:
				if !ok {
					return
				}
				m = msg
			}
			var e BlockEvent
			if err := json.Unmarshal([]byte(m.Payload), &e); err != nil {
				continue // not ours; nothing a subscriber could do with it
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	return out, stop, nil
}
