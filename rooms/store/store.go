// Package store holds the Redis side of the domain: the connection (a real
// server, or the embedded in-process one when none is configured) and the
// access state a token alone does not decide (used invitations, removals,
// blocks). What nodes share about each other (seats, room claims, the node
// registry) is package cluster's.
package store

import (
	"context"
	"fmt"

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
