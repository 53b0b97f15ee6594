package rooms

import (
	"os/exec"
	"strings"
	"testing"
)

// imports lists, for every package pattern builds (its dependencies
// within the module and without), the packages it imports directly, so
// that a broken rule names the import that broke it.
func imports(t *testing.T, pattern string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", pattern).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pattern, err, out)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		m[f[0]] = f[1:]
	}
	if len(m) == 0 {
		t.Fatalf("go list -deps %s listed nothing", pattern)
	}
	return m
}

// TestDependencies: the dependency direction of the README holds, cmd ->
// signaling -> rooms, sfu (cluster sits beside signaling, under cmd): the
// domain and its subpackages know nothing of websockets, media, the
// cluster or the edge; the media plane knows nothing of signaling, the
// domain or the edge; the cluster nothing of signaling, media or the edge;
// and nothing below cmd imports a command.
func TestDependencies(t *testing.T) {
	rules := []struct {
		pattern string
		banned  []string
	}{
		{"iop/rooms/...", []string{"gorilla/websocket", "github.com/pion/", "iop/signaling", "iop/sfu", "iop/cluster", "iop/cmd"}},
		{"iop/sfu/...", []string{"gorilla/websocket", "go-redis", "iop/signaling", "iop/rooms", "iop/cluster", "iop/cmd"}},
		{"iop/cluster/...", []string{"gorilla/websocket", "github.com/pion/", "iop/signaling", "iop/sfu", "iop/cmd"}},
		{"iop/signaling/...", []string{"iop/cmd"}},
	}
	for _, r := range rules {
		for pkg, imps := range imports(t, r.pattern) {
			if bannedIn(pkg, r.banned) {
				continue // reached through an import reported below
			}
			for _, imp := range imps {
				if bannedIn(imp, r.banned) {
					t.Errorf("%s: %s imports %s", r.pattern, pkg, imp)
				}
			}
		}
	}
}

func bannedIn(pkg string, banned []string) bool {
	for _, b := range banned {
		if strings.Contains(pkg, b) {
			return true
		}
	}
	return false
}

// TestDomainHasNoStorage: the domain package itself is not tied to its
// storage; Redis lives in rooms/store, cluster and the stores of the
// subpackages, behind the seams rooms declares (Seats, Listener).
func TestDomainHasNoStorage(t *testing.T) {
	banned := []string{"redis", "miniredis", "gorilla/websocket", "github.com/pion/", "iop/rooms/store"}
	for pkg, imps := range imports(t, "iop/rooms") {
		if bannedIn(pkg, banned) {
			continue
		}
		for _, imp := range imps {
			if bannedIn(imp, banned) {
				t.Errorf("package rooms depends on %s (imported by %s)", imp, pkg)
			}
		}
	}
}
