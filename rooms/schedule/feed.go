package schedule

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Calendar feed secrets. A person's feed URL is /v1/calendar/<secret>.ics:
// the secret alone grants it, so it is random (256 bits), revocable and
// rotatable. Redis indexes it by its SHA-256 only; the person's own key
// holds the current secret (to show the URL again) and a lookup checks
// that the secret is still the current one, so a revocation holds even if
// deleting the old index entry failed.

// feedSecretLen is the length of a secret: 32 bytes in unpadded base64url.
const feedSecretLen = 43

// feedOwner is what a feed index entry points at.
type feedOwner struct {
	Program string `json:"program"`
	Sub     string `json:"sub"`
}

func newFeedSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// FeedSecret returns the calendar feed secret of sub in program, creating
// one the first time. The same secret is returned until it is rotated or
// revoked.
func (st *Store) FeedSecret(ctx context.Context, program, sub string) (string, error) {
	if msg := checkSub("person", sub); msg != "" {
		return "", fmt.Errorf("feed secret: %w: %s", ErrInvalid, msg)
	}
	secret := newFeedSecret()
	ok, err := st.rdb.SetNX(ctx, feedOfKey(program, sub), secret, 0).Result()
	if err != nil {
		return "", fmt.Errorf("feed secret: %w", err)
	}
	if !ok {
		if secret, err = st.rdb.Get(ctx, feedOfKey(program, sub)).Result(); err != nil {
			return "", fmt.Errorf("feed secret: %w", err)
		}
	}
	// Written every time: repairs an index entry lost between the two steps.
	if err := st.indexFeed(ctx, program, sub, secret); err != nil {
		return "", err
	}
	return secret, nil
}

func (st *Store) indexFeed(ctx context.Context, program, sub, secret string) error {
	_, err := st.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.SetNX(ctx, feedKey(secret), mustJSON(feedOwner{program, sub}), 0)
		pipe.SAdd(ctx, feedsKey(program), sub)
		return nil
	})
	if err != nil {
		return fmt.Errorf("index feed secret: %w", err)
	}
	return nil
}

// RotateFeed gives sub a new feed secret; the old URL stops working.
func (st *Store) RotateFeed(ctx context.Context, program, sub string) (string, error) {
	if msg := checkSub("person", sub); msg != "" {
		return "", fmt.Errorf("rotate feed: %w: %s", ErrInvalid, msg)
	}
	secret := newFeedSecret()
	old, err := st.rdb.SetArgs(ctx, feedOfKey(program, sub), secret, redis.SetArgs{Get: true}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("rotate feed: %w", err)
	}
	if err := st.indexFeed(ctx, program, sub, secret); err != nil {
		return "", err
	}
	if old != "" {
		if err := st.rdb.Del(ctx, feedKey(old)).Err(); err != nil {
			return "", fmt.Errorf("rotate feed: drop the old secret: %w", err)
		}
	}
	return secret, nil
}

// RevokeFeed ends sub's feed: its URL answers 404 from now on. Revoking a
// feed that does not exist is not an error.
func (st *Store) RevokeFeed(ctx context.Context, program, sub string) error {
	old, err := st.rdb.GetDel(ctx, feedOfKey(program, sub)).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("revoke feed: %w", err)
	}
	_, err = st.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Del(ctx, feedKey(old))
		pipe.SRem(ctx, feedsKey(program), sub)
		return nil
	})
	if err != nil {
		return fmt.Errorf("revoke feed: %w", err)
	}
	return nil
}

// LookupFeed returns whose feed secret is: the program and the person. An
// unknown, revoked or rotated secret is ErrNotFound (answer 404).
func (st *Store) LookupFeed(ctx context.Context, secret string) (program, sub string, err error) {
	if len(secret) != feedSecretLen {
		return "", "", fmt.Errorf("calendar feed: %w", ErrNotFound)
	}
	if _, err := base64.RawURLEncoding.DecodeString(secret); err != nil {
		return "", "", fmt.Errorf("calendar feed: %w", ErrNotFound)
	}
	o, err := getJSON[feedOwner](ctx, st.rdb, feedKey(secret))
	if err != nil {
		return "", "", fmt.Errorf("calendar feed: %w", err)
	}
	if o == nil {
		return "", "", fmt.Errorf("calendar feed: %w", ErrNotFound)
	}
	cur, err := st.rdb.Get(ctx, feedOfKey(o.Program, o.Sub)).Result()
	if errors.Is(err, redis.Nil) || (err == nil && subtle.ConstantTimeCompare([]byte(cur), []byte(secret)) != 1) {
		return "", "", fmt.Errorf("calendar feed: %w", ErrNotFound)
	}
	if err != nil {
		return "", "", fmt.Errorf("calendar feed: %w", err)
	}
	return o.Program, o.Sub, nil
}

// Feed returns the iCalendar document of the feed secret at now (GET
// /v1/calendar/{secret}.ics): the person's sessions as Schedule.Feed
// writes them. An unknown or revoked secret is ErrNotFound.
func (st *Store) Feed(ctx context.Context, secret string, now time.Time, opts FeedOptions) ([]byte, error) {
	program, sub, err := st.LookupFeed(ctx, secret)
	if err != nil {
		return nil, err
	}
	s, err := st.LoadFor(ctx, program, sub)
	if err != nil {
		return nil, err
	}
	return s.Feed(sub, now, opts), nil
}
