package rooms

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies: the domain and its subpackages know nothing of
// websockets, media or the edge (DESIGN.md: cmd -> signaling -> rooms, sfu).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "iop/rooms/...").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"gorilla/websocket", "github.com/pion/", "iop/signaling", "iop/sfu"} {
			if strings.Contains(pkg, banned) {
				t.Errorf("rooms depends on %s", pkg)
			}
		}
	}
}
