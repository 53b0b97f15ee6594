package cluster

import (
	"context"
	"testing"
	"time"
)

// TestPlaces: a person's place moves with their latest join; the node they
// left cannot renew or release the new one, and is told of the move.
func TestPlaces(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	program, sub := "test-places-"+time.Now().Format("150405.000000"), "alex"
	t.Cleanup(func() { s.rdb.Del(ctx, placeKey(program, sub)) })
	a := Place{Node: "n1", Room: program + "/a"}
	b := Place{Node: "n2", Room: program + "/b"}

	got := make(chan Move, 1)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := s.SubscribeMoves(sctx, "n1", func(m Move) { got <- m }); err != nil {
		t.Fatal(err)
	}
	if old, err := s.SwapPlace(ctx, program, sub, a, time.Minute); err != nil || old != (Place{}) {
		t.Fatalf("first place: was %+v, %v; want nowhere", old, err)
	}
	if old, err := s.SwapPlace(ctx, program, sub, b, time.Minute); err != nil || old != a {
		t.Fatalf("second place: was %+v, %v; want %+v", old, err, a)
	}
	if ok, err := s.RenewPlace(ctx, program, sub, a, time.Minute); err != nil || ok {
		t.Errorf("the node they left renewed their place: %v %v", ok, err)
	}
	if err := s.ReleasePlace(ctx, program, sub, a); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.rdb.Get(ctx, placeKey(program, sub)).Result(); v != b.value() {
		t.Errorf("after the old node released: %q, want %q", v, b.value())
	}
	at := time.Now().UTC().Truncate(time.Second)
	if err := s.PublishMove(ctx, "n1", Move{Program: program, Sub: sub, Room: b.Room, At: at}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.Program != program || m.Sub != sub || m.Room != b.Room || !m.At.Equal(at) {
			t.Errorf("n1 was told %+v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("n1 was not told of the move")
	}
	if err := s.ReleasePlace(ctx, program, sub, b); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.rdb.Exists(ctx, placeKey(program, sub)).Result(); n != 0 {
		t.Error("the place stays after its node released it")
	}
}
