package signaling

import (
	"net/http/httptest"
	"testing"
)

// TestClientAddr: the audit trail's address is the peer's, or behind a
// trusted proxy the client's from X-Forwarded-For; a stranger cannot claim
// another address by sending the header.
func TestClientAddr(t *testing.T) {
	proxies, err := ParseProxies("10.0.0.0/8, 127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: Config{TrustedProxies: proxies}}
	for _, tc := range []struct {
		peer, xff, want string
	}{
		{"192.0.2.7:5000", "", "192.0.2.7"},
		{"192.0.2.7:5000", "198.51.100.1", "192.0.2.7"},               // a stranger's header is ignored
		{"10.1.2.3:443", "198.51.100.1", "198.51.100.1"},              // Caddy in front
		{"10.1.2.3:443", "203.0.113.9, 198.51.100.1", "198.51.100.1"}, // the client's own header is not believed
		{"127.0.0.1:443", "198.51.100.1, 10.9.9.9", "198.51.100.1"},   // two trusted hops
		{"10.1.2.3:443", "not-an-ip", "10.1.2.3"},
		{"[::ffff:192.0.2.8]:1", "", "192.0.2.8"},
	} {
		r := httptest.NewRequest("GET", "/v1/me/sessions", nil)
		r.RemoteAddr = tc.peer
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := s.clientAddr(r); got != tc.want {
			t.Errorf("peer %s, X-Forwarded-For %q: %q, want %q", tc.peer, tc.xff, got, tc.want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example", "1.2.3"} {
		if _, err := ParseProxies(bad); err == nil {
			t.Errorf("ParseProxies(%q) accepted", bad)
		}
	}
}
