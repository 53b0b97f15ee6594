// Package deploy holds the deployment files; this test checks
// docker-compose.yml with the Compose specification's own loader, since no
// container engine runs where the tests do.
package deploy

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

const testJWTSecret = "0123456789abcdef0123456789abcdef0123"

// load reads ../docker-compose.yml as `docker compose` would, with env as
// the only environment (and profiles enabled).
func load(t *testing.T, env map[string]string, profiles ...string) (*types.Project, error) {
	t.Helper()
	var kv []string
	for k, v := range env {
		kv = append(kv, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join("..", "docker-compose.yml")},
		cli.WithWorkingDirectory(".."), cli.WithEnv(kv), cli.WithProfiles(profiles), cli.WithName("iop"))
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

func mustLoad(t *testing.T, env map[string]string, profiles ...string) *types.Project {
	t.Helper()
	p, err := load(t, env, profiles...)
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

// published reports whether the service publishes target/proto on the same
// port number on the host (on hostIP, when given).
func published(s types.ServiceConfig, target uint32, proto, hostIP string) bool {
	for _, p := range s.Ports {
		if p.Target == target && p.Protocol == proto && p.Published == strconv.Itoa(int(target)) && p.HostIP == hostIP {
			return true
		}
	}
	return false
}

// mounts returns the service's volumes by target.
func mounts(s types.ServiceConfig) map[string]types.ServiceVolumeConfig {
	out := map[string]types.ServiceVolumeConfig{}
	for _, v := range s.Volumes {
		out[v.Target] = v
	}
	return out
}

func env(s types.ServiceConfig, k string) string {
	if v := s.Environment[k]; v != nil {
		return *v
	}
	return ""
}

// TestComposeHTTPSOutOfTheBox: with IOP_DOMAIN (and the signing secret) the
// stack serves https://IOP_DOMAIN: Caddy publishes 80 and 443, obtains the
// certificate itself and keeps it in a volume, and proxies to iopd, whose
// public URL and ICE address follow the domain; media is published on UDP
// and TCP with the same numbers; Redis stays private; coturn only with its
// profile.
func TestComposeHTTPSOutOfTheBox(t *testing.T) {
	p := mustLoad(t, map[string]string{"IOP_DOMAIN": "iop.example.org", "IOP_JWT_SECRET": testJWTSecret})
	if got := p.ServiceNames(); !slices.Equal(sorted(got), []string{"caddy", "iopd", "redis"}) {
		t.Fatalf("services %v, want caddy, iopd, redis (coturn only with --profile turn)", got)
	}
	caddy, iopd, redis := p.Services["caddy"], p.Services["iopd"], p.Services["redis"]

	if !strings.HasPrefix(caddy.Image, "caddy:2") {
		t.Errorf("the proxy is %q, want Caddy 2 (it obtains and renews certificates by itself)", caddy.Image)
	}
	for _, port := range []uint32{80, 443} {
		if !published(caddy, port, "tcp", "") {
			t.Errorf("caddy does not publish %d/tcp (ACME challenges and HTTPS)", port)
		}
	}
	if env(caddy, "IOP_DOMAIN") != "iop.example.org" {
		t.Errorf("caddy's IOP_DOMAIN %q", env(caddy, "IOP_DOMAIN"))
	}
	m := mounts(caddy)
	if v, ok := m["/data"]; !ok || v.Type != types.VolumeTypeVolume {
		t.Errorf("caddy keeps its certificates in %+v, want a named volume at /data (or it asks the CA again on every restart)", v)
	}
	if v := m["/etc/caddy/Caddyfile"]; v.Source != filepath.Join(p.WorkingDir, "deploy", "Caddyfile") || !v.ReadOnly {
		t.Errorf("the Caddyfile mount %+v, want deploy/Caddyfile read-only", v)
	}
	if !slices.Contains(caddy.CapAdd, "NET_BIND_SERVICE") {
		t.Errorf("caddy drops every capability but cannot bind 80 and 443: cap_add %v", caddy.CapAdd)
	}

	if got := env(iopd, "IOP_PUBLIC_URL"); got != "https://iop.example.org" {
		t.Errorf("iopd's IOP_PUBLIC_URL %q, want https://iop.example.org", got)
	}
	if got := env(iopd, "IOP_PUBLIC_IP"); got != "iop.example.org" {
		t.Errorf("iopd's IOP_PUBLIC_IP %q, want the domain when no address is set", got)
	}
	if env(iopd, "IOP_UDP_PORT") != "50000" || env(iopd, "IOP_TCP_PORT") != "50000" {
		t.Errorf("media ports udp %q tcp %q, want 50000 both", env(iopd, "IOP_UDP_PORT"), env(iopd, "IOP_TCP_PORT"))
	}
	for _, proto := range []string{"udp", "tcp"} {
		if !published(iopd, 50000, proto, "") {
			t.Errorf("iopd does not publish 50000/%s as 50000", proto)
		}
	}
	if !published(iopd, 8080, "tcp", "127.0.0.1") || len(iopd.Ports) != 3 {
		t.Errorf("iopd's ports %+v: HTTP must be published on 127.0.0.1 only (browsers come through Caddy)", iopd.Ports)
	}
	if len(redis.Ports) != 0 {
		t.Errorf("redis publishes %+v", redis.Ports)
	}

	// Every bind-mounted file is in the repository.
	for _, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s mounts %s: %v", s.Name, v.Source, err)
				}
			}
		}
	}
}

// TestComposeLocalMode: without IOP_DOMAIN the stack serves
// https://localhost with Caddy's own certificate; without IOP_JWT_SECRET it
// refuses to start.
func TestComposeLocalMode(t *testing.T) {
	p := mustLoad(t, map[string]string{"IOP_JWT_SECRET": testJWTSecret})
	iopd := p.Services["iopd"]
	if env(p.Services["caddy"], "IOP_DOMAIN") != "localhost" || env(iopd, "IOP_PUBLIC_URL") != "https://localhost" || env(iopd, "IOP_PUBLIC_IP") != "127.0.0.1" {
		t.Errorf("local mode: caddy %q, iopd url %q ip %q", env(p.Services["caddy"], "IOP_DOMAIN"), env(iopd, "IOP_PUBLIC_URL"), env(iopd, "IOP_PUBLIC_IP"))
	}
	if p := mustLoad(t, map[string]string{"IOP_JWT_SECRET": testJWTSecret, "IOP_DOMAIN": "192.168.1.10", "IOP_PUBLIC_IP": "192.168.1.10"}); env(p.Services["iopd"], "IOP_PUBLIC_URL") != "https://192.168.1.10" {
		t.Errorf("LAN trial: %q", env(p.Services["iopd"], "IOP_PUBLIC_URL"))
	}
	if _, err := load(t, map[string]string{"IOP_DOMAIN": "iop.example.org"}); err == nil || !strings.Contains(err.Error(), "IOP_JWT_SECRET") {
		t.Errorf("without IOP_JWT_SECRET: %v, want a refusal naming it", err)
	}
}

// TestComposeTURNProfile: with --profile turn, coturn runs on the host
// network with iopd's TURN secret and the domain as its realm.
func TestComposeTURNProfile(t *testing.T) {
	p := mustLoad(t, map[string]string{"IOP_DOMAIN": "iop.example.org", "IOP_JWT_SECRET": testJWTSecret,
		"IOP_TURN_SECRET": "turn-secret-0123456789", "IOP_TURN_URLS": "turn:iop.example.org:3478?transport=udp"}, "turn")
	coturn, ok := p.Services["coturn"]
	if !ok {
		t.Fatal("no coturn with --profile turn")
	}
	if coturn.NetworkMode != "host" {
		t.Errorf("coturn network_mode %q, want host", coturn.NetworkMode)
	}
	cmd := strings.Join(coturn.Command, " ")
	for _, want := range []string{"--static-auth-secret=turn-secret-0123456789", "--realm=iop.example.org"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("coturn's command %q lacks %q", cmd, want)
		}
	}
	if env(p.Services["iopd"], "IOP_TURN_SECRET") != "turn-secret-0123456789" || env(p.Services["iopd"], "IOP_TURN_URLS") == "" {
		t.Error("iopd does not get the TURN secret and URLs")
	}
}

// TestCaddyfile: the site is IOP_DOMAIN, proxied to iopd, with certificates
// Caddy obtains itself (no internal CA, no certificate files) and
// websockets kept open across a reload.
func TestCaddyfile(t *testing.T) {
	b, err := os.ReadFile("Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	conf := strings.Join(lines, "\n")
	for _, want := range []string{"{$IOP_DOMAIN:localhost} {", "reverse_proxy iopd:8080 {", "stream_close_delay"} {
		if !strings.Contains(conf, want) {
			t.Errorf("Caddyfile lacks %q", want)
		}
	}
	if regexp.MustCompile(`(?m)^tls\b`).MatchString(conf) {
		t.Errorf("Caddyfile configures tls itself; Caddy obtains certificates only without:\n%s", conf)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestDeployREADMEWalkthrough: deploy/README.md walks a clinic from a fresh
// host to an https:// call in numbered steps, and what those steps name
// (the ports to open, the settings in .env, the command) is what
// docker-compose.yml publishes and reads.
func TestDeployREADMEWalkthrough(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "## From a fresh host to a call")
	if start < 0 {
		t.Fatal(`deploy/README.md has no "From a fresh host to a call" section`)
	}
	walk := doc[start:]
	walk = walk[:strings.Index(walk[3:], "\n## ")+3]
	steps := regexp.MustCompile(`(?m)^(\d+)\. \*\*`).FindAllStringSubmatch(walk, -1)
	if len(steps) < 5 {
		t.Fatalf("the walkthrough has %d numbered steps", len(steps))
	}
	for i, s := range steps {
		if s[1] != strconv.Itoa(i+1) {
			t.Errorf("step %d is numbered %s", i+1, s[1])
		}
	}
	for _, want := range []string{"80/tcp", "443/tcp", "50000/udp", "50000/tcp", "IOP_DOMAIN=", "IOP_JWT_SECRET=", "docker compose up", "https://iop.example.org", "iopctl token"} {
		if !strings.Contains(walk, want) {
			t.Errorf("the walkthrough does not mention %q", want)
		}
	}
	compose, err := os.ReadFile(filepath.Join("..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// What the README puts in .env (NAME=value) must reach a container.
	for _, m := range regexp.MustCompile(`(?m)^\s*(IOP_[A-Z_]+)=`).FindAllStringSubmatch(doc, -1) {
		if !strings.Contains(string(compose), "${"+m[1]) {
			t.Errorf("deploy/README.md sets %s, which docker-compose.yml does not read", m[1])
		}
	}
	p := mustLoad(t, map[string]string{"IOP_DOMAIN": "iop.example.org", "IOP_JWT_SECRET": testJWTSecret})
	for _, port := range []struct {
		service string
		n       uint32
		proto   string
	}{{"caddy", 80, "tcp"}, {"caddy", 443, "tcp"}, {"iopd", 50000, "udp"}, {"iopd", 50000, "tcp"}} {
		if !published(p.Services[port.service], port.n, port.proto, "") {
			t.Errorf("the README opens %d/%s, which %s does not publish", port.n, port.proto, port.service)
		}
	}
}
