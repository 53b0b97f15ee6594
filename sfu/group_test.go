package sfu

import (
	"fmt"
	"testing"
)

// TestGroupsForwardWithinAGroup: in a room of four split into two groups,
// each participant receives its own group's media and none of the other
// group's; moving one participant across, and back, moves what it
// receives and who receives it, on the same PeerConnections.
func TestGroupsForwardWithinAGroup(t *testing.T) {
	s := newTestSFU(t)
	r := s.Room("groups")
	a := joinPeer(t, r, "a", true)
	b := joinPeer(t, r, "b", true)
	c := joinPeer(t, r, "c", true)
	d := joinPeer(t, r, "d", true)
	all := []*peer{a, b, c, d}
	receives(t, all, all...)

	b.part.SetGroup(1)
	d.part.SetGroup(1)
	receives(t, []*peer{a, c}, a, c)
	receives(t, []*peer{b, d}, b, d)
	isolated(t, []*peer{a, c}, []*peer{b, d})

	// b visits group 0 and comes back: a and c hear it, d loses it.
	b.part.SetGroup(0)
	receives(t, []*peer{a, b, c}, a, b, c)
	isolated(t, []*peer{a, b, c}, []*peer{d})
	if b.part.Group() != 0 || d.part.Group() != 1 {
		t.Errorf("groups: b %d, d %d", b.part.Group(), d.part.Group())
	}
	for _, p := range all {
		if p.failed.Load() {
			t.Errorf("%s: media failed", p.part.id)
		}
	}
}

// receives waits until each of ps receives fresh audio and video from
// every other member of from.
func receives(t *testing.T, ps []*peer, from ...*peer) {
	t.Helper()
	for _, p := range ps {
		for _, q := range from {
			if p == q {
				continue
			}
			for _, kind := range []string{"audio", "video"} {
				start := p.packets(q.part.id, kind)
				waitFor(t, fmt.Sprintf("%s receives %s's %s", p.part.id, q.part.id, kind), func() bool {
					return p.packets(q.part.id, kind) > start+10
				})
			}
		}
	}
}

// isolated checks that, while the members of each side go on receiving
// each other for another 50 packets, nothing more arrives across sides.
func isolated(t *testing.T, x, y []*peer) {
	t.Helper()
	across := func() map[string]int64 {
		out := map[string]int64{}
		for _, pair := range [][2][]*peer{{x, y}, {y, x}} {
			for _, p := range pair[0] {
				for _, q := range pair[1] {
					for _, kind := range []string{"audio", "video"} {
						out[p.part.id+"<-"+q.part.id+"/"+kind] = p.packets(q.part.id, kind)
					}
				}
			}
		}
		return out
	}
	before := across()
	for _, side := range [][]*peer{x, y} {
		for _, p := range side {
			for _, q := range side {
				if p != q {
					start := p.packets(q.part.id, "audio")
					waitFor(t, p.part.id+" keeps receiving "+q.part.id, func() bool { return p.packets(q.part.id, "audio") > start+50 })
				}
			}
		}
	}
	for k, n := range across() {
		if n != before[k] {
			t.Errorf("%s: %d packets arrived across groups", k, n-before[k])
		}
	}
}
