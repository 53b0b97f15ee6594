package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sync"
	"testing"
	"time"
)

// uniq returns an id no other test (or earlier run on the shared test
// database) uses.
func uniq(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// TestConsumeJTI: a single-use invite is accepted once, by exactly one of
// several concurrent joins, and its record outlives the token.
func TestConsumeJTI(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	until := time.Now().Add(2 * time.Hour)

	jti := uniq("jti")
	tests := []struct {
		name  string
		jti   string
		first bool
	}{
		{"first use", jti, true},
		{"second use", jti, false},
		{"third use", jti, false},
		{"another invite", uniq("jti"), true},
		{"a jti that looks like a key path", jti + ":x", true},
	}
	for _, tc := range tests {
		first, err := s.ConsumeJTI(ctx, "p1", tc.jti, until)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if first != tc.first {
			t.Errorf("%s: first = %v, want %v", tc.name, first, tc.first)
		}
	}
	if _, err := s.ConsumeJTI(ctx, "p1", "", until); err == nil {
		t.Error("consumed an empty jti")
	}

	// Two nodes admit the same invite at the same moment: one wins.
	race := uniq("jti")
	var wins int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			first, err := s.ConsumeJTI(ctx, "p1", race, until)
			if err != nil {
				t.Error(err)
			}
			if first {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d of 20 concurrent uses of one invite were first, want 1", wins)
	}

	// The record lives until the token's expiry, and at least a minute even
	// when the caller passes a time already gone.
	for _, tc := range []struct {
		name     string
		until    time.Time
		min, max time.Duration
	}{
		{"until exp", time.Now().Add(2 * time.Hour), 2*time.Hour - time.Minute, 2 * time.Hour},
		{"past exp", time.Now().Add(-time.Hour), 50 * time.Second, minJTITTL},
	} {
		id := uniq("jti")
		if _, err := s.ConsumeJTI(ctx, "p1", id, tc.until); err != nil {
			t.Fatal(err)
		}
		ttl, err := s.Redis.TTL(ctx, jtiKey("p1", id)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl < tc.min || ttl > tc.max {
			t.Errorf("%s: consumed jti kept for %v, want between %v and %v", tc.name, ttl, tc.min, tc.max)
		}
	}
}

// TestRevokeFromRoom: a removed participant is kept out of that session,
// and only that session, until the revocation expires.
func TestRevokeFromRoom(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	room, sub := uniq("room"), uniq("sub")
	if err := s.RevokeFromRoom(ctx, room, sub, 0); err != nil {
		t.Fatal(err)
	}
	// Ids with ':' must not alias: (a:b, c) is not (a, b:c).
	colonRoom := room + ":x"
	if err := s.RevokeFromRoom(ctx, colonRoom, sub, time.Hour); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		room, sub string
		revoked   bool
	}{
		{"removed person, same room", room, sub, true},
		{"removed person, another room", uniq("room"), sub, false},
		{"someone else, same room", room, uniq("sub"), false},
		{"colon in the room id", colonRoom, sub, true},
		{"colon moved into the sub", room, "x:" + sub, false},
	}
	for _, tc := range tests {
		got, err := s.RevokedFromRoom(ctx, tc.room, tc.sub)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.revoked {
			t.Errorf("%s: revoked = %v, want %v", tc.name, got, tc.revoked)
		}
	}
	ttl, err := s.Redis.TTL(ctx, revokedKey(room, sub)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl < DefaultRevocationTTL-time.Minute || ttl > DefaultRevocationTTL {
		t.Errorf("default revocation kept for %v, want %v", ttl, DefaultRevocationTTL)
	}
	if err := s.RevokeFromRoom(ctx, "", sub, time.Hour); err == nil {
		t.Error("revoked from an empty room id")
	}

	// A revocation ends by itself.
	short := uniq("room")
	if err := s.RevokeFromRoom(ctx, short, sub, time.Second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		revoked, err := s.RevokedFromRoom(ctx, short, sub)
		if err != nil {
			t.Fatal(err)
		}
		if !revoked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a 1 s revocation still holds after 10 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// next returns the next event about program on ch, skipping others' (tests
// of other packages share the Redis), or fails after 5 s: the time in which
// a block must reach live sessions.
func next(t *testing.T, ch <-chan BlockEvent, program string) BlockEvent {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatal("block subscription closed")
			}
			if e.Program == program {
				return e
			}
		case <-timeout:
			t.Fatal("no block event within 5 s")
		}
	}
}

// TestBlock: a block is stored program-wide, every subscribed node hears of
// it within seconds, and unblocking undoes both.
func TestBlock(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	program, sub, other := uniq("program"), uniq("sub"), uniq("sub")

	nodeA, stopA, err := s.SubscribeBlocks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stopA()
	nodeB, stopB, err := s.SubscribeBlocks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stopB()

	blocked := func(program, sub string) bool {
		t.Helper()
		b, err := s.Blocked(ctx, program, sub)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if blocked(program, sub) {
		t.Fatal("blocked before any block")
	}
	if err := s.Block(ctx, program, sub); err != nil {
		t.Fatal(err)
	}
	for _, node := range []<-chan BlockEvent{nodeA, nodeB} {
		if e := next(t, node, program); e != (BlockEvent{Program: program, Sub: sub, Blocked: true}) {
			t.Errorf("block event %+v", e)
		}
	}
	tests := []struct {
		name         string
		program, sub string
		blocked      bool
	}{
		{"blocked person", program, sub, true},
		{"someone else", program, other, false},
		{"same person, another program", uniq("program"), sub, false},
	}
	for _, tc := range tests {
		if got := blocked(tc.program, tc.sub); got != tc.blocked {
			t.Errorf("%s: blocked = %v, want %v", tc.name, got, tc.blocked)
		}
	}
	if subs, err := s.BlockedIn(ctx, program); err != nil || !slices.Equal(subs, []string{sub}) {
		t.Errorf("BlockedIn = %v, %v; want [%s]", subs, err, sub)
	}

	if err := s.Unblock(ctx, program, sub); err != nil {
		t.Fatal(err)
	}
	if e := next(t, nodeA, program); e.Blocked || e.Sub != sub {
		t.Errorf("unblock event %+v", e)
	}
	if blocked(program, sub) {
		t.Error("still blocked after Unblock")
	}
	if err := s.Block(ctx, "", sub); err == nil {
		t.Error("blocked in an empty program")
	}

	// Stopping closes the channel; so does the end of the context.
	stopA()
	stopA() // harmless twice
	for range nodeA {
	}
	cctx, cancel := context.WithCancel(ctx)
	nodeC, stopC, err := s.SubscribeBlocks(cctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stopC()
	cancel()
	select {
	case <-waitClosed(nodeC):
	case <-time.After(5 * time.Second):
		t.Fatal("subscription still open after its context ended")
	}
}

// waitClosed drains ch in the background and reports when it is closed.
func waitClosed(ch <-chan BlockEvent) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for range ch {
		}
		close(done)
	}()
	return done
}
