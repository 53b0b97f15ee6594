package cluster

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"iop/rooms/store"
)

// openTest opens the Redis of IOP_TEST_REDIS_URL (CI: a real redis-server)
// or the embedded one.
func openTest(t *testing.T) *Store {
	t.Helper()
	st, err := store.Open(context.Background(), os.Getenv("IOP_TEST_REDIS_URL"))
	if err != nil {
		t.Fatalf("open Redis: %v", err)
	}
	t.Cleanup(st.Close)
	return NewStore(st.Redis)
}

func find(t *testing.T, s *Store, id string) *Node {
	t.Helper()
	nodes, err := s.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.ID == id {
			return &n
		}
	}
	return nil
}

// TestNodeRegistry: a node is listed while it refreshes its entry, gone
// once it unregisters, and gone by itself when it stops refreshing (a node
// that died).
func TestNodeRegistry(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	id := "test-" + time.Now().Format("150405.000000000")
	if err := s.RegisterNode(ctx, Node{ID: id, URL: "http://10.0.0.7:8080", Participants: 3, Rooms: 1}, time.Minute); err != nil {
		t.Fatal(err)
	}
	n := find(t, s, id)
	if n == nil || n.URL != "http://10.0.0.7:8080" || n.Participants != 3 {
		t.Fatalf("registered node reads back as %+v", n)
	}
	if err := s.UnregisterNode(ctx, id); err != nil {
		t.Fatal(err)
	}
	if find(t, s, id) != nil {
		t.Fatal("node still listed after unregistering")
	}

	dead := id + "-dead"
	if err := s.RegisterNode(ctx, Node{ID: dead, URL: "http://x"}, time.Second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for find(t, s, dead) != nil {
		if time.Now().After(deadline) {
			t.Fatal("a node that stopped refreshing is still listed after its TTL")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClaimAfterRestart: a claim left by a node that crashed belongs to the
// node that starts again with the same id or at the same URL (it would
// otherwise redirect joins to itself until the claim lapses); a claim of
// another node at another URL stays that node's.
func TestClaimAfterRestart(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	room := "p1/restart-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + time.Now().Format("150405.000000")
	t.Cleanup(func() { s.rdb.Del(context.Background(), ownerKey(room)) })
	cases := []struct {
		name, id, url string
		mine          bool
		owner         string
	}{
		{"first run", "old-random-id", "http://10.0.0.1:8080", true, ""},
		{"same URL, new random id", "new-random-id", "http://10.0.0.1:8080", true, ""},
		{"same id, new URL", "new-random-id", "http://10.0.0.9:8080", true, ""},
		{"another node", "node-b", "http://10.0.0.2:8080", false, "http://10.0.0.9:8080"},
	}
	for _, c := range cases {
		mine, owner, err := s.ClaimRoom(ctx, room, c.id, c.url, time.Minute)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if mine != c.mine || (!mine && owner != c.owner) {
			t.Errorf("%s: mine %v owner %q, want %v %q", c.name, mine, owner, c.mine, c.owner)
		}
	}
}
