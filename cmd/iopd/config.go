package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"iop/rooms/audit"
	"iop/rooms/chain"
	"iop/rooms/civil"
	"iop/signaling"
)

// config is iopd's configuration: every field has a flag and an IOP_*
// environment variable (README, "Configuration"); a flag
// given on the command line wins over the variable.
type config struct {
	HTTPAddr      string
	PublicURL     string
	UDPHost       string
	UDPPort       int
	TCPPort       string
	UDPBatch      string
	PublicIP      string
	TURNURLs      string
	TURNSecret    string
	TURNTTL       time.Duration
	TURNPort      string
	RedisURL      string
	JWTSecret     string
	JWTKeys       string
	JWTPrivateKey string
	JWTAudience   string
	JWTIssuer     string
	JWTLeeway     time.Duration
	JWTMaxTTL     time.Duration
	Origins       string
	Proxies       string
	Timezone      string
	NodeID        string
	RoomCaps      string
	DataDir       string

	// Limits on what one person, one address or one HTTP connection may
	// hold (docs/protocol.md, section 7).
	SocketsPerPerson int
	UnjoinedPerAddr  int
	JoinRate         float64
	JoinBurst        int
	HTTPReadTimeout  time.Duration
	HTTPWriteTimeout time.Duration
	HTTPIdleTimeout  time.Duration
	HTTPMaxHeader    int
	HTTPConnsPerAddr int
	MaxParticipants  int
	TracksPerPerson  int
	CandidatesPerPC  int
	OffersPerMinute  int

	// The audit trail (package audit; the lead wires it into the server).
	AuditKey       string // audit.ParseKey: "hex:..." or raw bytes, at least 32 bytes
	AuditRetention string // audit.ParseRetention: days (2192d) or a duration, at least six years

	// AttendanceKey keys the attendance chain (chain.ParseKey, the same
	// format as AuditKey; a key of its own, so that either can be set or
	// rotated without touching the other's chain).
	AttendanceKey string
	// AttendanceOldKeys are the attendance keys AttendanceKey replaced
	// (chain.ParseKeys): they verify the older parts of the chains.
	AttendanceOldKeys string

	// pingInterval and idleTimeout are the websocket's (zero: signaling's
	// defaults, 15 s and 45 s); tests shorten them to see a silent drop
	// in seconds.
	pingInterval, idleTimeout time.Duration

	// What parseConfig made of the settings above, once: the time zone,
	// the audit trail's key and retention, the attendance chain's keys
	// (the node uses these, not the strings).
	zone              *time.Location
	auditKey          []byte
	auditRetention    time.Duration
	attendanceKey     []byte
	attendanceOldKeys [][]byte
}

// dev reports whether iopd runs in dev mode: no signing key configured, so
// it makes one and prints join links for a demo room.
func (c *config) dev() bool { return c.JWTSecret == "" && c.JWTKeys == "" }

type option struct {
	flag, env, help string
	target          any
	def             string
}

func options(c *config) []option {
	return []option{
		{"http-addr", "IOP_HTTP_ADDR", "HTTP listen address (default 127.0.0.1:8080 in dev mode, :8080 otherwise)", &c.HTTPAddr, ""},
		{"public-url", "IOP_PUBLIC_URL", "this node's public base URL, used in links and redirects (default http:// + the HTTP address)", &c.PublicURL, ""},
		{"udp-host", "IOP_UDP_HOST", "address the media UDP port binds to (default: every interface)", &c.UDPHost, ""},
		{"udp-port", "IOP_UDP_PORT", "media UDP port shared by all peers; 0 picks a free port", &c.UDPPort, "50000"},
		{"tcp-port", "IOP_TCP_PORT", "media TCP port for ICE over TCP, for browsers whose network blocks UDP; off turns it off (default: the UDP port's number)", &c.TCPPort, ""},
		{"udp-batch", "IOP_UDP_BATCH", "on: the copies of a forwarded packet leave in one sendmmsg per media socket; off: one sendto each", &c.UDPBatch, "on"},
		{"public-ip", "IOP_PUBLIC_IP", "address announced in ICE candidates, comma-separated; a host name is looked up at start (default: the host's addresses)", &c.PublicIP, ""},
		{"turn-urls", "IOP_TURN_URLS", "TURN server URLs handed to clients with short-lived credentials, comma-separated, e.g. turn:turn.example.org:3478?transport=udp,turns:turn.example.org:5349?transport=tcp", &c.TURNURLs, ""},
		{"turn-secret", "IOP_TURN_SECRET", "the TURN server's shared secret (coturn static-auth-secret, use-auth-secret), 16 bytes or more", &c.TURNSecret, ""},
		{"turn-port", "IOP_TURN_PORT", "run an embedded TURN server on this UDP and TCP port (0 picks a free one) that relays only to this iopd, for an install without coturn (default: none)", &c.TURNPort, ""},
		{"turn-ttl", "IOP_TURN_TTL", "how long TURN credentials last in a room the schedule does not know (a scheduled session's last until its end plus 30 minutes)", &c.TURNTTL, "3h"},
		{"redis-url", "IOP_REDIS_URL", "Redis URL, e.g. redis://127.0.0.1:6379/0 (unset: embedded in-process Redis, data lost on exit)", &c.RedisURL, ""},
		{"jwt-secret", "IOP_JWT_SECRET", "HS256 signing key, at least 32 bytes (unset: dev mode generates one and prints join links)", &c.JWTSecret, ""},
		{"jwt-keys", "IOP_JWT_KEYS", "PEM or JWK set file of EdDSA/ES256 public keys, selected by kid; reloaded on SIGHUP", &c.JWTKeys, ""},
		{"jwt-private-key", "IOP_JWT_PRIVATE_KEY", "PEM private key (EdDSA or ES256) that signs family invitations when IOP_JWT_KEYS is used", &c.JWTPrivateKey, ""},
		{"jwt-audience", "IOP_JWT_AUDIENCE", "expected token audience", &c.JWTAudience, "iop"},
		{"jwt-issuer", "IOP_JWT_ISSUER", "expected token issuer (unset: any)", &c.JWTIssuer, ""},
		{"jwt-leeway", "IOP_JWT_LEEWAY", "clock leeway for exp, nbf and iat", &c.JWTLeeway, "10s"},
		{"jwt-max-ttl", "IOP_JWT_MAX_TTL", "how far ahead a token's exp may lie (family invitations: up to 168h)", &c.JWTMaxTTL, "24h"},
		{"origins", "IOP_ORIGINS", "allowed websocket origins, comma-separated (default: same origin)", &c.Origins, ""},
		{"trusted-proxies", "IOP_TRUSTED_PROXIES", "reverse proxies whose X-Forwarded-For gives the client's address (audit trail): IPs and CIDR prefixes, comma-separated", &c.Proxies, ""},
		{"timezone", "IOP_TIMEZONE", "time zone of rooms outside any schedule", &c.Timezone, "UTC"},
		{"node-id", "IOP_NODE_ID", "this node's id in the node registry (default: random)", &c.NodeID, ""},
		{"data-dir", "IOP_DATA_DIR", "directory for the attendance spool used while Redis is unreachable; keep it on a disk that survives restarts (default: a temporary directory)", &c.DataDir, ""},
		{"audit-key", "IOP_AUDIT_KEY", "HMAC key of the audit trail's hash chain: hex: and hex digits, or raw bytes; at least 32 bytes (unset: plain SHA-256)", &c.AuditKey, ""},
		{"attendance-key", "IOP_ATTENDANCE_KEY", "HMAC key of the attendance event chain, as IOP_AUDIT_KEY: hex: and hex digits, or raw bytes; at least 32 bytes. Set on every node and for iopctl attendance; a keyed chain stays keyed, its key changes only by rotation (IOP_ATTENDANCE_OLD_KEYS) (unset: plain SHA-256)", &c.AttendanceKey, ""},
		{"attendance-old-keys", "IOP_ATTENDANCE_OLD_KEYS", "attendance chain keys that IOP_ATTENDANCE_KEY replaced, in its format, separated by commas: the events they keyed still verify, and a chain last keyed with one passes to IOP_ATTENDANCE_KEY with its next event (docs/reliability.md, key rotation)", &c.AttendanceOldKeys, ""},
		{"audit-retention", "IOP_AUDIT_RETENTION", "how long audit entries are kept: days (2192d) or a duration; at least six years", &c.AuditRetention, "2192d"},
		{"sockets-per-person", "IOP_SOCKETS_PER_PERSON", "signaling sockets one person may hold on this node; a join beyond it closes their oldest with replaced", &c.SocketsPerPerson, "4"},
		{"unjoined-per-addr", "IOP_UNJOINED_PER_ADDR", "signaling sockets one IP address may hold open before joining; more are refused with too_many_connections", &c.UnjoinedPerAddr, "20"},
		{"join-rate", "IOP_JOIN_RATE", "join attempts per second one IP address may make, sustained; more get too_many_joins", &c.JoinRate, "2"},
		{"join-burst", "IOP_JOIN_BURST", "join attempts one IP address may make in a burst", &c.JoinBurst, "20"},
		{"http-read-timeout", "IOP_HTTP_READ_TIMEOUT", "how long a client may take to send a whole HTTP request (headers: 10s at most)", &c.HTTPReadTimeout, "30s"},
		{"http-write-timeout", "IOP_HTTP_WRITE_TIMEOUT", "how long writing one HTTP response may take (exports included; websockets are not bound by it)", &c.HTTPWriteTimeout, "5m"},
		{"http-idle-timeout", "IOP_HTTP_IDLE_TIMEOUT", "how long an idle keep-alive HTTP connection stays open", &c.HTTPIdleTimeout, "60s"},
		{"http-max-header-bytes", "IOP_HTTP_MAX_HEADER_BYTES", "largest HTTP request header (431 beyond)", &c.HTTPMaxHeader, "32768"},
		{"http-conns-per-addr", "IOP_HTTP_CONNS_PER_ADDR", "TCP connections one IP address may hold open at once (trusted proxies excepted); more are answered 429 and closed", &c.HTTPConnsPerAddr, "128"},
		{"max-participants", "IOP_MAX_PARTICIPANTS", "people this node carries at once, waiting or admitted; a join beyond it gets node_full", &c.MaxParticipants, "200"},
		{"tracks-per-person", "IOP_TRACKS_PER_PERSON", "tracks one participant may publish; a publish offer with more gets too_many_tracks", &c.TracksPerPerson, "4"},
		{"candidates-per-pc", "IOP_CANDIDATES_PER_PC", "ICE candidates a client may send per PeerConnection and description; more get too_many_candidates", &c.CandidatesPerPC, "64"},
		{"renegotiations-per-min", "IOP_RENEGOTIATIONS_PER_MIN", "publish offers (renegotiations, ICE restarts) one participant may send per minute; more get too_many_renegotiations", &c.OffersPerMinute, "30"},
		{"room-caps", "IOP_ROOM_CAPS", "client caps per room kind, e.g. group=12,support=20 (default group, complementary, support 15; individual 1; family 1 client + 6 family)", &c.RoomCaps, ""},
	}
}

// parseConfig reads flags from args over environment variables from getenv
// over the defaults.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("iopd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts := options(c)
	for _, o := range opts {
		def := o.def
		if v := getenv(o.env); v != "" {
			def = v
		}
		help := o.help + " [$" + o.env + "]"
		switch t := o.target.(type) {
		case *string:
			fs.StringVar(t, o.flag, def, help)
		case *int:
			n, err := strconv.Atoi(def)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is not a number", o.env, def)
			}
			fs.IntVar(t, o.flag, n, help)
		case *float64:
			f, err := strconv.ParseFloat(def, 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is not a number", o.env, def)
			}
			fs.Float64Var(t, o.flag, f, help)
		case *time.Duration:
			d, err := time.ParseDuration(def)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is not a duration", o.env, def)
			}
			fs.DurationVar(t, o.flag, d, help)
		}
	}
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "iopd: telehealth session server (signaling, SFU and web client on one HTTP port and one media port, UDP and TCP)")
		fmt.Fprintln(fs.Output(), "Every flag can also be set by the environment variable in brackets.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = ":8080"
		if c.dev() {
			c.HTTPAddr = "127.0.0.1:8080"
		}
	}
	if c.UDPPort < 0 || c.UDPPort > 65535 {
		return nil, fmt.Errorf("udp port %d out of range", c.UDPPort)
	}
	if c.TURNURLs != "" && c.TURNSecret == "" {
		return nil, fmt.Errorf("IOP_TURN_URLS needs IOP_TURN_SECRET: clients need credentials for the servers")
	}
	if c.TURNSecret != "" && c.TURNURLs == "" && c.TURNPort == "" {
		return nil, fmt.Errorf("IOP_TURN_SECRET needs IOP_TURN_URLS or IOP_TURN_PORT")
	}
	if c.TURNPort != "" {
		if p, err := strconv.Atoi(c.TURNPort); err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("IOP_TURN_PORT: %q is not a port number", c.TURNPort)
		}
	}
	if _, _, err := c.tcpPort(); err != nil {
		return nil, err
	}
	if c.UDPBatch != "on" && c.UDPBatch != "off" {
		return nil, fmt.Errorf("IOP_UDP_BATCH: %q is neither on nor off", c.UDPBatch)
	}
	if _, err := signaling.ParseProxies(c.Proxies); err != nil {
		return nil, fmt.Errorf("IOP_TRUSTED_PROXIES: %w", err)
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		return nil, fmt.Errorf("IOP_JWT_SECRET must be at least 32 bytes")
	}
	if c.JWTSecret != "" && c.JWTKeys != "" {
		return nil, fmt.Errorf("set IOP_JWT_SECRET or IOP_JWT_KEYS, not both: the algorithm is pinned by one of them")
	}
	if c.JWTPrivateKey != "" && c.JWTKeys == "" {
		return nil, fmt.Errorf("IOP_JWT_PRIVATE_KEY signs invitations for IOP_JWT_KEYS; with IOP_JWT_SECRET the secret signs them")
	}
	if c.SocketsPerPerson < 1 || c.UnjoinedPerAddr < 1 || c.JoinBurst < 1 || !(c.JoinRate > 0) {
		return nil, fmt.Errorf("IOP_SOCKETS_PER_PERSON, IOP_UNJOINED_PER_ADDR, IOP_JOIN_RATE and IOP_JOIN_BURST must be positive")
	}
	if c.HTTPConnsPerAddr < 1 || c.MaxParticipants < 1 || c.TracksPerPerson < 1 || c.CandidatesPerPC < 1 || c.OffersPerMinute < 1 {
		return nil, fmt.Errorf("IOP_HTTP_CONNS_PER_ADDR, IOP_MAX_PARTICIPANTS, IOP_TRACKS_PER_PERSON, IOP_CANDIDATES_PER_PC and IOP_RENEGOTIATIONS_PER_MIN must be positive")
	}
	if c.HTTPReadTimeout <= 0 || c.HTTPWriteTimeout <= 0 || c.HTTPIdleTimeout <= 0 || c.HTTPMaxHeader < 4096 {
		return nil, fmt.Errorf("the IOP_HTTP_* timeouts must be positive and IOP_HTTP_MAX_HEADER_BYTES at least 4096")
	}
	if err := c.derive(); err != nil {
		return nil, err
	}
	return c, nil
}

// derive parses the settings that are kept in a parsed form (the time
// zone, the audit and attendance keys, the audit retention), once, after
// the strings are set.
func (c *config) derive() error {
	var err error
	if c.zone, err = civil.LoadZone(c.Timezone); err != nil {
		return fmt.Errorf("IOP_TIMEZONE: %w", err)
	}
	if c.auditKey, err = audit.ParseKey(c.AuditKey); err != nil {
		return fmt.Errorf("IOP_AUDIT_KEY: %w", err)
	}
	if c.attendanceKey, err = chain.ParseKey(c.AttendanceKey); err != nil {
		return fmt.Errorf("IOP_ATTENDANCE_KEY: %w", err)
	}
	if c.attendanceOldKeys, err = chain.ParseKeys(c.AttendanceOldKeys); err != nil {
		return fmt.Errorf("IOP_ATTENDANCE_OLD_KEYS: %w", err)
	}
	if c.auditRetention, err = audit.ParseRetention(c.AuditRetention); err != nil {
		return fmt.Errorf("IOP_AUDIT_RETENTION: %w", err)
	}
	return nil
}

// tcpPort returns the media TCP port, and whether ICE over TCP is on.
func (c *config) tcpPort() (port int, on bool, err error) {
	switch c.TCPPort {
	case "":
		return c.UDPPort, true, nil
	case "off":
		return 0, false, nil
	}
	port, err = strconv.Atoi(c.TCPPort)
	if err != nil || port < 0 || port > 65535 {
		return 0, false, fmt.Errorf("IOP_TCP_PORT: %q is not a port number or off", c.TCPPort)
	}
	return port, true, nil
}

// splitList splits a comma-separated setting, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
