package turn

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/pion/logging"
	pturn "github.com/pion/turn/v5"
)

// ServerConfig configures the embedded TURN server, for an install of iopd
// alone; coturn stays the choice for larger deployments.
type ServerConfig struct {
	// Addr is where the server listens for clients, on UDP and TCP, as
	// host:port; port 0 picks a free one (the same on both when it can).
	Addr string
	// RelayIP is the address of the relayed traffic as iopd sees it, given
	// in relay candidates (the relay sockets bind to every interface, and
	// take packets only from the Peers).
	RelayIP net.IP
	// Peers are the only addresses the relay may send to: iopd's own media
	// addresses. Nobody can use this relay to reach anything else.
	Peers []net.IP
	// Secret checks TURN REST credentials (Issuer.Issue with the same one).
	Secret []byte
	// Realm names the server in its authentication challenges.
	Realm string
}

// Server is a running embedded TURN server.
type Server struct {
	srv  *pturn.Server
	port int
}

// Listen starts the embedded TURN server.
func Listen(cfg ServerConfig) (*Server, error) {
	if len(cfg.Secret) == 0 || cfg.RelayIP == nil || len(cfg.Peers) == 0 {
		return nil, errors.New("TURN server: needs a secret, a relay address and iopd's media addresses")
	}
	udp, tcp, err := listenBoth(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("TURN server: %w", err)
	}
	port := udp.LocalAddr().(*net.UDPAddr).Port
	allowed := func(_ net.Addr, peer net.IP) bool {
		for _, ip := range cfg.Peers {
			if ip.Equal(peer) {
				return true
			}
		}
		return false
	}
	relay := func() pturn.RelayAddressGenerator {
		return &pturn.RelayAddressGeneratorStatic{RelayAddress: cfg.RelayIP, Address: "0.0.0.0"}
	}
	quiet := logging.NewDefaultLoggerFactory()
	quiet.DefaultLogLevel = logging.LogLevelDisabled // usernames and addresses stay out of logs
	realm := cfg.Realm
	if realm == "" {
		realm = "iop"
	}
	srv, err := pturn.NewServer(pturn.ServerConfig{
		Realm:             realm,
		AuthHandler:       pturn.LongTermTURNRESTAuthHandler(string(cfg.Secret), quiet.NewLogger("turn")),
		LoggerFactory:     quiet,
		PacketConnConfigs: []pturn.PacketConnConfig{{PacketConn: udp, RelayAddressGenerator: relay(), PermissionHandler: allowed}},
		ListenerConfigs:   []pturn.ListenerConfig{{Listener: tcp, RelayAddressGenerator: relay(), PermissionHandler: allowed}},
	})
	if err != nil {
		_ = udp.Close()
		_ = tcp.Close()
		return nil, fmt.Errorf("TURN server: %w", err)
	}
	return &Server{srv: srv, port: port}, nil
}

// listenBoth listens on UDP and TCP with the same port number; with port 0
// it tries free UDP ports until the same TCP port is free too.
func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	for tries := 0; ; tries++ {
		udp, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return nil, nil, err
		}
		p := udp.LocalAddr().(*net.UDPAddr).Port
		tcp, err := net.Listen("tcp4", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			return udp, tcp, nil
		}
		_ = udp.Close()
		if port != "0" || tries == 20 {
			return nil, nil, err
		}
	}
}

// Port returns the UDP and TCP port the server listens on.
func (s *Server) Port() int { return s.port }

// Close stops the server and ends every allocation.
func (s *Server) Close() error { return s.srv.Close() }
