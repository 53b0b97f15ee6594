package cluster

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRenewSeats: many leases are renewed in one call; a lease that lapsed
// is taken again while its room has a seat, and reported lost when the
// room filled meanwhile.
func TestRenewSeats(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	room := fmt.Sprintf("demo/renew-%d", time.Now().UnixNano())
	var refs []SeatRef
	for i := range 100 {
		ref := SeatRef{Room: room, Category: "client", Person: fmt.Sprintf("p%03d", i), Cap: 101}
		if ok, err := s.TakeSeat(ctx, ref, 300*time.Millisecond); err != nil || !ok {
			t.Fatalf("take %s: %v %v", ref.Person, ok, err)
		}
		refs = append(refs, ref)
	}
	ok, err := s.RenewSeats(ctx, refs, time.Minute)
	if err != nil || slices.Contains(ok, false) {
		t.Fatalf("renew 100 held leases: %v %v", ok, err)
	}
	time.Sleep(400 * time.Millisecond) // the first lease would have lapsed without the renewal
	if seated, err := s.Seated(ctx, room, "client"); err != nil || len(seated) != 100 {
		t.Fatalf("after the renewal %d are seated (%v), want 100", len(seated), err)
	}

	// p000's lease lapses while a newcomer takes the last seat.
	past := float64(time.Now().Add(-time.Second).UnixMilli())
	if err := s.rdb.ZAdd(ctx, seatKey(room, "client"), redis.Z{Score: past, Member: "p000"}).Err(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"late-1", "late-2"} {
		if _, err := s.TakeSeat(ctx, SeatRef{Room: room, Category: "client", Person: p, Cap: 101}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	ok, err = s.RenewSeats(ctx, refs[:2], time.Minute)
	if err != nil || ok[0] || !ok[1] {
		t.Errorf("renew a lapsed lease in a full room and a held one: %v %v, want [false true]", ok, err)
	}
}
