package rooms

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies: the domain and its subpackages know nothing of
// websockets, media or the edge (README: cmd -> signaling -> rooms, sfu).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "iop/rooms/...").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"gorilla/websocket", "github.com/pion/", "iop/signaling", "iop/sfu", "iop/cluster"} {
			if strings.Contains(pkg, banned) {
				t.Errorf("rooms depends on %s", pkg)
			}
		}
	}
}

// TestDomainHasNoStorage: the domain package itself is not tied to its
// storage; Redis lives in rooms/store, cluster and the stores of the
// subpackages, behind the seams rooms declares (Seats, Listener).
func TestDomainHasNoStorage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "iop/rooms").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"redis", "miniredis", "gorilla/websocket", "github.com/pion/", "iop/rooms/store"} {
			if strings.Contains(pkg, banned) {
				t.Errorf("package rooms depends on %s", pkg)
			}
		}
	}
}
