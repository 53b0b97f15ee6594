package turn

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/pion/logging"
	pturn "github.com/pion/turn/v5"
)

// TestEmbeddedServerRelaysOnlyToIopd: the embedded TURN server takes the
// credentials an Issuer mints with its secret, refuses others, and relays
// to iopd's media addresses only, so that it cannot be used to reach
// anything else on the host's networks.
func TestEmbeddedServerRelaysOnlyToIopd(t *testing.T) {
	secret := []byte("embedded-secret-0123456789")
	iopd, err := net.ListenPacket("udp4", "127.0.0.1:0") // stands in for iopd's media port
	if err != nil {
		t.Fatal(err)
	}
	defer iopd.Close()
	srv, err := Listen(ServerConfig{Addr: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1), Peers: []net.IP{net.IPv4(127, 0, 0, 1)}, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	iss := &Issuer{URLs: []string{"turn:x"}, Secret: secret}

	allocate := func(c Credential) (*pturn.Client, net.PacketConn, error) {
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		quiet := logging.NewDefaultLoggerFactory()
		quiet.DefaultLogLevel = logging.LogLevelDisabled
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Port()))
		cl, err := pturn.NewClient(&pturn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr, Username: c.Username, Password: c.Password, Conn: conn, LoggerFactory: quiet, RTO: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		if err := cl.Listen(); err != nil {
			t.Fatal(err)
		}
		relay, err := cl.Allocate()
		return cl, relay, err
	}

	if _, _, err := allocate(Credential{Username: "9999999999:someone", Password: "guessed"}); err == nil {
		t.Error("a credential not made with the secret got an allocation")
	}
	if _, _, err := allocate(iss.Issue("p1", time.Now().Add(-time.Minute))); err == nil {
		t.Error("an expired credential got an allocation")
	}
	_, relay, err := allocate(iss.Issue("p1", time.Now().Add(time.Hour)))
	if err != nil {
		t.Fatalf("a fresh credential: %v", err)
	}
	defer relay.Close()
	// To iopd: delivered.
	if _, err := relay.WriteTo([]byte("media"), iopd.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	_ = iopd.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	if n, _, err := iopd.ReadFrom(buf); err != nil || string(buf[:n]) != "media" {
		t.Fatalf("iopd got %q, %v through the relay", buf[:n], err)
	}
	// Anywhere else: refused.
	other := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 99), Port: 9}
	if _, err := relay.WriteTo([]byte("media"), other); err == nil {
		t.Errorf("the relay sends to %v, which is not iopd", other)
	}
}
