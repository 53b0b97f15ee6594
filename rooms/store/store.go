// Package store holds the Redis side of the domain: the connection (a real
// server, or the embedded in-process one when none is configured), the key
// names, and the node registry through which several iopd nodes see each
// other.
package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Store is the shared state connection.
type Store struct {
	// Redis is the client every Redis-backed part of the domain uses.
	Redis    *redis.Client
	embedded *miniredis.Miniredis
}

// Open connects to the Redis at url, or starts the embedded in-process Redis
// when url is empty. It fails if the server does not answer.
func Open(ctx context.Context, url string) (*Store, error) {
	s := &Store{}
	var opts *redis.Options
	if url == "" {
		m := miniredis.NewMiniRedis()
		if err := m.Start(); err != nil {
			return nil, fmt.Errorf("start embedded Redis: %w", err)
		}
		// Leases and claims must expire with the wall clock, as on a real Redis.
		m.ClockTTL(true)
		s.embedded = m
		opts = &redis.Options{Addr: m.Addr()}
	} else {
		var err error
		if opts, err = redis.ParseURL(url); err != nil {
			return nil, fmt.Errorf("IOP_REDIS_URL: %w", err)
		}
	}
	s.Redis = redis.NewClient(opts)
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Embedded reports whether the store is the in-process Redis (nothing
// survives a restart).
func (s *Store) Embedded() bool { return s.embedded != nil }

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.Redis.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// Close releases the connection and stops the embedded server.
func (s *Store) Close() {
	_ = s.Redis.Close()
	if s.embedded != nil {
		s.embedded.Close()
	}
}

// Node is one iopd node as other nodes see it.
type Node struct {
	ID           string    `json:"id"`
	URL          string    `json:"url"`
	Participants int       `json:"participants"`
	Rooms        int       `json:"rooms"`
	Seen         time.Time `json:"seen"`
}

// nodeKey is the registry entry of one node; it expires unless refreshed.
func nodeKey(id string) string { return "iop:node:" + id }

// nodeIndex is the set of node ids that have registered.
const nodeIndex = "iop:nodes"

// RegisterNode writes n to the registry with a time to live: a node that
// stops refreshing disappears from Nodes after ttl.
func (s *Store) RegisterNode(ctx context.Context, n Node, ttl time.Duration) error {
	b, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode node: %w", err)
	}
	_, err = s.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, nodeKey(n.ID), b, ttl)
		p.SAdd(ctx, nodeIndex, n.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("register node: %w", err)
	}
	return nil
}

// UnregisterNode removes n from the registry (graceful shutdown).
func (s *Store) UnregisterNode(ctx context.Context, id string) error {
	_, err := s.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, nodeKey(id))
		p.SRem(ctx, nodeIndex, id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("unregister node: %w", err)
	}
	return nil
}

// Nodes returns the live nodes, pruning ids whose entry has expired.
func (s *Store) Nodes(ctx context.Context) ([]Node, error) {
	ids, err := s.Redis.SMembers(ctx, nodeIndex).Result()
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var out []Node
	for _, id := range ids {
		b, err := s.Redis.Get(ctx, nodeKey(id)).Bytes()
		if err == redis.Nil {
			s.Redis.SRem(ctx, nodeIndex, id)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read node: %w", err)
		}
		var n Node
		if err := json.Unmarshal(b, &n); err != nil {
			return nil, fmt.Errorf("decode node %s: %w", id, err)
		}
		out = append(out, n)
	}
	return out, nil
}
